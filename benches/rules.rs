//! Rule matching throughput: newswatch's compiled rule set against the naive
//! "one regex per rule" approach of regex-filter feed readers.
//!
//! Run with `cargo bench --bench rules` (about 4 minutes on 2 cores).
//!
//! # Corpus
//!
//! A fixed-seed generator (SplitMix64, `benches/support`) builds 10,000 news-like
//! items of about 3 KB each: a title of ~10 words, a summary of ~40 words and
//! content for the rest. Words come from a vocabulary of ~2,800 words: ~500
//! common English words and ~290 politics/defence/economy/cyber/election words
//! written out below, 2,000 synthetic words (syllable combinations standing
//! in for the long tail of names and jargon), plus every name, alias, demonym
//! and linked place of the built-in gazetteer. Words follow a Zipf law; each
//! item has a topic whose vocabulary is over-represented and one to four
//! focus entities that recur through the text, as in real news.
//!
//! # Rules
//!
//! 1,000 rules are generated deterministically in eight shapes people write,
//! for example `(w1 OR w2 OR "w3 w4") NEAR/8 (w5* OR w6) AND NOT w7`,
//! `entity:"Benin" AND (…) NEAR/10 (…)`, `title:(…) AND kind:country>=2`;
//! the 1- and 100-rule sets are the first 1 and 100 of them. Rule words are
//! topic words or words from the middle and tail of the vocabulary. The setup
//! prints the share of items that fire at least one rule for each set.
//!
//! # Measurements (one iteration = every item of the corpus or subset)
//!
//! * `newswatch/fired/N`: `RuleSet::fired` (which rules fire, without
//!   explanations: what the daemon runs per item) over 10,000 prebuilt
//!   `Document`s with N rules (normalization and entity tagging done before).
//! * `newswatch/evaluate/N`: `RuleSet::evaluate`, the same with every match
//!   explained (hits and snippets).
//! * `newswatch/normalize`: `NormText::new` of the three fields of every
//!   item (folding and tokenizing, no entity tagging), the step any rule of
//!   words needs first; add it to `fired/N` for the cost from text.
//! * `newswatch/document+evaluate/1000`: `Document::new` (normalize, tag
//!   entities, guess names) plus `evaluate` with 1,000 rules: the whole
//!   per-item cost in the daemon.
//! * `regex-per-rule/*/is_match/N`: the baseline, one `regex::Regex` per rule,
//!   each run with `is_match` over the item's lowercased raw text (title,
//!   summary and content joined; lowercasing is done before the measurement).
//!
//! Throughput is in bytes of original text; items/s is the number of items
//! processed per iteration divided by the time per iteration.
//!
//! # The baseline is a cost floor, not an equivalent matcher
//!
//! One regex cannot express AND, NOT or NEAR (Rust's `regex` has no
//! lookaround), and running several regexes per rule is not what regex-filter
//! readers do. So each rule becomes ONE regex matching any of the rule's
//! *positive* terms, as an alternation:
//!
//! * `word`      → `\bword\b`
//! * `word*`     → `\bword\w*`
//! * `"a b"`     → `\ba\s+b\b`
//! * `entity:X`  → every name, alias, demonym and linked place of X
//! * `kind:K>=n` → every name of every entity of kind K (about 950 strings
//!   for countries)
//! * terms under NOT are dropped; field scopes and distances are ignored.
//!
//! Two variants: `all-terms` as above, and `words-only`, which also drops the
//! entity and kind terms: the cheapest regex a rule could possibly have.
//! Either regex answers a weaker question than the rule (it fires whenever
//! any positive term occurs) and stops at the first match, so it does less
//! work than a faithful translation would: its time is a lower bound for the
//! regex approach. Word boundaries are ASCII (`(?-u:\b)`), which keeps the
//! regex crate on its lazy DFA even where an item contains accented names
//! (a Unicode `\b` would make the baseline slower on such items). The
//! criterion warm-up runs the regexes once over their items first, so the lazy
//! DFAs are measured warm.
//!
//! At 100 and 1,000 rules the baseline runs over the first 2,000/500
//! (`words-only`) or 500/50 (`all-terms`) items, since all 10,000 would take
//! minutes per iteration; throughput is per byte of the items processed, so
//! the rates are comparable.
//!
//! # Breakdown mode
//!
//! `RULES_BENCH_BREAKDOWN=1 cargo bench --bench rules` skips criterion and
//! prints, per rule count, the time of `evaluate` over the corpus, of the same
//! rules gated behind a word that never occurs (same scan and term hits, no
//! rule evaluated), and of a bare Aho-Corasick scan over the same term
//! patterns. `RULES_BENCH_TAIL=N` sets the number of synthetic tail words.
//! `RULES_BENCH_RATIOS=1` measures the two headline ratios (1,000 rules
//! against 1; newswatch against both baselines at 1,000 rules) interleaved,
//! three rounds, so that load from other processes affects both sides alike;
//! each round also times the whole per-item cost (`Document::new` + `fired`)
//! at 1 and 1,000 rules, and the normalization alone (`NormText::new` of the
//! three fields, no entity tagging), which it adds to the `fired` times.
//! `RULES_BENCH_PROFILE=N` only runs `evaluate` with N rules over the corpus
//! twenty times, for a profiler (`perf record -g target/release/deps/rules-…`);
//! with `RULES_BENCH_DOCS=k` it runs over the first k items, repeated, which
//! shows how much of the time goes to what caches and the branch predictor
//! cannot learn.
//! `RULES_BENCH_COMPARE=10,100,1000` (any list of rule counts) measures, per
//! count, newswatch's `fired` against both regex-per-rule baselines in
//! `RULES_BENCH_ROUNDS` (default 5) interleaved rounds, and prints the median
//! and range of each in µs per item plus a `compare:` summary line per count
//! (what `bench/run.sh` collects).

mod support;

use std::collections::{BTreeSet, HashMap};
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use newswatch::document::Document;
use newswatch::entities::{BUILTIN_ENTITIES, EntitySpec, Gazetteer, GazetteerFile};
use newswatch::rules::{self, Expr, RuleSet};
use newswatch::text::NormText;

const ITEMS: usize = 10_000;
const ITEM_BYTES: usize = 3_000;
const TITLE_WORDS: usize = 10;
const SUMMARY_WORDS: usize = 40;
const SYNTHETIC_WORDS: usize = 2_000;
const SEED: u64 = 0x7275_6c65_7362_656e; // "rulesben"
const RULE_COUNTS: [usize; 3] = [1, 100, 1_000];

use support::SplitMix64 as Rng;

trait Chance {
    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool;
}

impl Chance for Rng {
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

// ---------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------

/// Common English words, roughly by frequency (Zipf ranks follow this order).
const COMMON: &str = "
the of and to a in is that for it was on with he as be by at from his
have an are they this which not or had but were their has been one said
she we all there would her who more its will can about when so what also
up out if into after them than other two over only new some could time
these first may people then do no our years like any just most last made
year world state such because between even back where him through three
those before while many well should government how much very both down
under another during same day week against since being off four us each
still country here around told take long high did own public city five
without make part until set early way came help work plan need told group
number five found does public place second end including later called left
president minister police officials talks support military forces security
national power war political report week month news statement local along
home house former former around told next small large major number whether
among case good best per again however according already though put show
family led want expected within say far across often least old per known
six time little public right great small next less system left since every
area much half seven eight nine ten hundred thousand million billion morning
evening night today yesterday tomorrow monday tuesday wednesday thursday
friday saturday sunday january february march april june july august
september october november december spring summer autumn winter water food
health children women men school students workers company business market
price prices money bank pay tax jobs industry energy oil gas power climate
weather storm fire flood road train car air plane ship port border city
town village region capital street building center centre court judge law
rights case trial prison charge charges police officer attack killed dead
injured hospital doctors disease virus vaccine study research science data
internet online phone video social media television radio newspaper press
story reporters journalist interview speech campaign party vote voters poll
seat seats leader leaders opposition coalition parliament congress senate
member members council committee chair head chief office official agency
department ministry service services program programme project plan plans
policy policies reform reforms budget spending debt deficit growth economy
economic trade deal deals agreement agreements talks meeting meetings visit
trip summit conference forum event events crisis problem problems issue
issues question questions answer decision decisions result results change
changes move moves step steps effort efforts action actions response
pressure threat threats risk risks fear fears concern concerns hope hopes
call calls demand demands offer offers proposal proposals idea ideas view
views side sides position role control power powers force forces army navy
troops soldiers fighters weapons arms missile missiles drone drones tank
tanks artillery ammunition aircraft jets warship warships base bases front
line lines battle battles fighting combat offensive counteroffensive defence
defense strike strikes airstrike airstrikes shelling bombing explosion blast
ceasefire truce peace negotiations mediation hostages prisoners exchange
civilians refugees displaced aid humanitarian relief shelter camp camps
";

/// Politics, defence, diplomacy, economy, cyber and election vocabulary.
const POLITICS: &str = "
sanction sanctions sanctioned embargo tariffs tariff export exports import
imports quota quotas asset assets frozen freeze oligarch oligarchs
deploy deployed deployment deployments redeploy mobilise mobilised
mobilization mobilisation conscription conscripts reservists brigade
brigades battalion battalions division divisions regiment infantry
paratroopers marines special commandos mercenaries contractors garrison
exercise exercises drill drills manoeuvres maneuvers wargames readiness
alert escalation deescalation incursion invasion occupation annexation
withdrawal retreat advance advanced encircled siege blockade corridor
buffer demilitarized frontline frontier airspace violation violations
interceptor interceptors radar sonar submarine submarines frigate
destroyer carrier cruiser bomber bombers fighter ballistic hypersonic
cruise warhead warheads nuclear enrichment uranium plutonium reactor
treaty accord protocol memorandum communique declaration resolution
veto envoy ambassador embassy consulate diplomat diplomats diplomatic
bilateral multilateral alliance allies allied partnership summit summits
ministerial delegation delegations negotiator negotiators mediator
election elections electoral ballot ballots turnout runoff referendum
candidate candidates incumbent challenger landslide recount fraud
rigged observers polling constituency constituencies majority minority
coalition caucus primary primaries inauguration sworn impeachment
resign resigned resignation dissolved snap mandate legislature
legislative lawmakers mp mps senator senators governor governors
cyber cyberattack cyberattacks hackers hacker hacking ransomware
malware phishing breach breaches outage outages botnet espionage
spyware vulnerability exploit exploited patch intrusion intrusions
infrastructure grid pipeline pipelines telecom satellite satellites
disinformation propaganda influence interference surveillance
inflation recession interest rates central stimulus bailout bonds
currency devaluation stocks shares investors markets commodities wheat
grain fertiliser fertilizer shipments cargo tanker tankers lng crude
refinery output production supply shortages subsidies
migrants migration asylum smuggling trafficking deportation deported
protest protests protesters demonstrators crackdown arrested detained
detention curfew emergency martial coup junta insurgents insurgency
militants militia rebels separatists terrorist terrorism extremist
assassination plot hostage kidnapped abducted
veterans casualties wounded fatalities losses captured liberated
shelled struck intercepted downed launched fired targeted
condemned warned vowed pledged urged denied rejected accused
";

/// Topic vocabularies: one is over-represented in each item.
const TOPICS: [&str; 6] = [
    "troops soldiers deploy deployed deployment brigade battalion border frontline offensive artillery \
     missile missiles drone drones tanks mobilisation reservists garrison incursion advance withdrawal \
     exercise exercises drill drills airspace interceptor fighting shelling",
    "summit summits leaders ministers council commission parliament ministerial delegation communique \
     declaration agreement accord negotiations bilateral multilateral alliance allies partnership envoy \
     ambassador diplomats treaty resolution veto",
    "sanctions sanctioned embargo tariffs exports imports assets frozen oligarchs inflation recession \
     currency markets investors shipments tanker crude refinery output supply shortages subsidies bonds",
    "cyber cyberattack cyberattacks hackers hacking ransomware malware phishing breach outage botnet \
     espionage spyware vulnerability exploit patch intrusion infrastructure grid telecom satellite",
    "election elections electoral ballot ballots turnout runoff referendum candidate candidates \
     incumbent challenger landslide recount fraud observers polling constituency majority coalition \
     inauguration resign mandate",
    "protest protests protesters demonstrators crackdown arrested detained curfew emergency coup \
     militants rebels insurgents hostages refugees displaced humanitarian aid ceasefire truce",
];

struct Vocabulary {
    /// Zipf-ranked words: common, then politics, then synthetic.
    words: Vec<String>,
    /// Cumulative Zipf weights over `words`.
    cumulative: Vec<f64>,
    topics: Vec<Vec<String>>,
    /// Surface forms of each gazetteer entity (name, aliases, demonyms, links).
    entity_forms: Vec<Vec<String>>,
    /// Indices into `entity_forms` of countries.
    countries: Vec<usize>,
    specs: Vec<EntitySpec>,
}

fn synthetic_words(rng: &mut Rng, n: usize) -> Vec<String> {
    const ONSETS: [&str; 20] = [
        "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "kr", "st",
        "tr", "sh", "ch",
    ];
    const VOWELS: [&str; 7] = ["a", "e", "i", "o", "u", "ai", "ou"];
    const CODAS: [&str; 8] = ["", "", "n", "r", "s", "l", "t", "k"];
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let syllables = 2 + rng.below(3);
        let mut w = String::new();
        for _ in 0..syllables {
            w.push_str(ONSETS[rng.below(ONSETS.len())]);
            w.push_str(VOWELS[rng.below(VOWELS.len())]);
        }
        w.push_str(CODAS[rng.below(CODAS.len())]);
        if seen.insert(w.clone()) {
            out.push(w);
        }
    }
    out
}

fn vocabulary(rng: &mut Rng) -> Vocabulary {
    let mut seen = BTreeSet::new();
    let mut words: Vec<String> = Vec::new();
    for w in COMMON.split_whitespace().chain(POLITICS.split_whitespace()) {
        if seen.insert(w.to_string()) {
            words.push(w.to_string());
        }
    }
    // RULES_BENCH_TAIL=N changes the number of synthetic tail words (a
    // sensitivity knob: a longer tail makes rule words rarer in the text).
    let tail = std::env::var("RULES_BENCH_TAIL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SYNTHETIC_WORDS);
    for w in synthetic_words(rng, tail) {
        if seen.insert(w.clone()) {
            words.push(w);
        }
    }
    // Zipf with s = 1, shifted so the top words are not absurdly dominant.
    let mut total = 0.0;
    let cumulative = (0..words.len())
        .map(|r| {
            total += 1.0 / (r as f64 + 2.7);
            total
        })
        .collect();
    let topics = TOPICS
        .iter()
        .map(|t| t.split_whitespace().map(String::from).collect())
        .collect();
    let specs = GazetteerFile::parse(BUILTIN_ENTITIES, "builtin")
        .expect("the built-in gazetteer parses")
        .entity;
    let entity_forms: Vec<Vec<String>> = specs
        .iter()
        .map(|s| {
            let mut forms = vec![s.name.clone()];
            forms.extend(s.aliases.iter().cloned());
            forms.extend(s.cased.iter().cloned());
            forms.extend(s.demonyms.iter().cloned());
            forms.extend(s.links.iter().map(|l| l.name.clone()));
            forms
        })
        .collect();
    let countries = specs
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == "country")
        .map(|(i, _)| i)
        .collect();
    Vocabulary {
        words,
        cumulative,
        topics,
        entity_forms,
        countries,
        specs,
    }
}

impl Vocabulary {
    fn zipf<'a>(&'a self, rng: &mut Rng) -> &'a str {
        let total = *self.cumulative.last().expect("vocabulary is not empty");
        let x = rng.unit() * total;
        let i = self.cumulative.partition_point(|&c| c < x);
        &self.words[i.min(self.words.len() - 1)]
    }
}

// ---------------------------------------------------------------------------
// Items
// ---------------------------------------------------------------------------

struct Item {
    title: String,
    summary: String,
    content: String,
}

impl Item {
    fn len(&self) -> usize {
        self.title.len() + self.summary.len() + self.content.len()
    }
}

/// Writes words into `out` until `words` words or `bytes` bytes, whichever
/// comes first, with sentences, commas and capitals.
struct Writer<'a> {
    vocab: &'a Vocabulary,
    topic: usize,
    focus: Vec<usize>,
}

impl Writer<'_> {
    fn token(&self, rng: &mut Rng) -> String {
        let x = rng.unit();
        if x < 0.025 {
            // An entity: mostly the item's focus entities, sometimes any country.
            let entity = if rng.chance(0.8) {
                *rng.pick(&self.focus)
            } else {
                *rng.pick(&self.vocab.countries)
            };
            rng.pick(&self.vocab.entity_forms[entity]).clone()
        } else if x < 0.11 {
            rng.pick(&self.vocab.topics[self.topic]).clone()
        } else {
            self.vocab.zipf(rng).to_string()
        }
    }

    fn text(&self, rng: &mut Rng, words: usize, bytes: usize) -> String {
        let mut out = String::new();
        let mut sentence_start = true;
        let mut n = 0;
        while n < words && out.len() < bytes {
            let word = self.token(rng);
            if !out.is_empty() {
                out.push(' ');
            }
            if sentence_start {
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    out.extend(first.to_uppercase());
                    out.push_str(chars.as_str());
                }
                sentence_start = false;
            } else {
                out.push_str(&word);
            }
            n += 1;
            let end = rng.unit();
            if end < 0.06 {
                out.push('.');
                sentence_start = true;
            } else if end < 0.11 {
                out.push(',');
            }
        }
        if !out.ends_with('.') {
            out.push('.');
        }
        out
    }
}

fn items(rng: &mut Rng, vocab: &Vocabulary) -> Vec<Item> {
    (0..ITEMS)
        .map(|_| {
            let topic = rng.below(vocab.topics.len() + 2) % vocab.topics.len();
            let focus = (0..1 + rng.below(4))
                .map(|_| {
                    if rng.chance(0.6) {
                        *rng.pick(&vocab.countries)
                    } else {
                        rng.below(vocab.entity_forms.len())
                    }
                })
                .collect();
            let writer = Writer {
                vocab,
                topic,
                focus,
            };
            let title_words = TITLE_WORDS - 3 + rng.below(6);
            let title = writer.text(rng, title_words, usize::MAX);
            let summary_words = SUMMARY_WORDS - 10 + rng.below(20);
            let summary = writer.text(rng, summary_words, usize::MAX);
            let content_bytes = ITEM_BYTES.saturating_sub(title.len() + summary.len());
            let content = writer.text(rng, usize::MAX, content_bytes);
            Item {
                title,
                summary,
                content,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------

fn quote(words: &str) -> String {
    format!("\"{words}\"")
}

/// A rule word: a topic word, or a word from the middle and tail of the
/// vocabulary (neither stop words nor the commonest words).
fn rule_word(rng: &mut Rng, vocab: &Vocabulary, topic: usize) -> String {
    if rng.chance(0.2) {
        rng.pick(&vocab.topics[topic]).clone()
    } else {
        vocab.words[400 + rng.below(vocab.words.len() - 400)].clone()
    }
}

fn prefix_of(word: &str) -> String {
    let n = word.chars().count();
    let keep = if n > 6 { n - 2 } else { n.max(2) };
    let stem: String = word.chars().take(keep).collect();
    format!("{stem}*")
}

/// An entity as a rule names it: `entity:"Name"`, or by id where the name
/// does not resolve (see the report: names listed as `cased` do not).
fn entity_term(rng: &mut Rng, vocab: &Vocabulary, gazetteer: &Gazetteer, country: bool) -> String {
    let i = if country {
        *rng.pick(&vocab.countries)
    } else {
        rng.below(vocab.specs.len())
    };
    let spec = &vocab.specs[i];
    if gazetteer.lookup(&spec.name).is_some() {
        format!("entity:{}", quote(&spec.name))
    } else {
        format!("entity:{}", spec.id)
    }
}

/// Rule shapes, cycled through by rule index.
const SHAPES: usize = 8;

fn generate_rules(
    rng: &mut Rng,
    vocab: &Vocabulary,
    gazetteer: &Gazetteer,
    n: usize,
) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let topic = rng.below(vocab.topics.len());
            let mut w = || rule_word(rng, vocab, topic);
            let (w1, w2, w3, w4, w5, w6, w7) = (w(), w(), w(), w(), w(), w(), w());
            let query = match i % SHAPES {
                0 => format!(
                    "({w1} OR {w2} OR {}) NEAR/8 ({} OR {w6}) AND NOT {w7}",
                    quote(&format!("{w3} {w4}")),
                    prefix_of(&w5)
                ),
                1 => format!(
                    "{} AND ({w1} OR {}) NEAR/10 ({w3} OR {w4})",
                    entity_term(rng, vocab, gazetteer, true),
                    prefix_of(&w2)
                ),
                2 => format!("title:({w1} OR {}) AND kind:country>=2", prefix_of(&w3)),
                3 => format!(
                    "({} OR {}) NEAR/6 ({w3} OR {w4} OR {w5})",
                    entity_term(rng, vocab, gazetteer, false),
                    entity_term(rng, vocab, gazetteer, true)
                ),
                4 => format!(
                    "({w1} OR {}) NEAR/5 {w3} AND kind:country>=2 AND NOT ({w6} OR {w7})",
                    prefix_of(&w2)
                ),
                5 => format!(
                    "{} OR ({w3} NEAR/3 {w4} AND {w5})",
                    quote(&format!("{w1} {w2}"))
                ),
                6 => format!(
                    "title:({w1} OR {w2}) AND ({w3} OR {w4} OR {}) AND NOT {w6}",
                    prefix_of(&w5)
                ),
                _ => format!(
                    "({w1} NEAR/4 {w2}) OR ({} NEAR/4 {w4}) OR ({} NEAR/5 {w6})",
                    prefix_of(&w3),
                    entity_term(rng, vocab, gazetteer, false)
                ),
            };
            (format!("rule-{i}"), query)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Baseline: one regex per rule
// ---------------------------------------------------------------------------

const B: &str = r"(?-u:\b)";

fn words_pattern(words: &[String], prefix: bool) -> String {
    let body = words
        .iter()
        .map(|w| regex::escape(w))
        .collect::<Vec<_>>()
        .join(r"\s+");
    if prefix {
        format!(r"{B}{body}\w*")
    } else {
        format!("{B}{body}{B}")
    }
}

fn surface_pattern(form: &str) -> String {
    let lower = form.to_lowercase();
    let words: Vec<String> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect();
    // Punctuation inside names ("U.S.", "Côte d'Ivoire") becomes \W+.
    let body = words
        .iter()
        .map(|w| regex::escape(w))
        .collect::<Vec<_>>()
        .join(r"\W+");
    format!("{B}{body}{B}")
}

/// Which positive terms the baseline regex of a rule covers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Baseline {
    /// Words, prefixes and phrases, plus every surface form of the rule's
    /// entities and of every entity of its kinds.
    AllTerms,
    /// Words, prefixes and phrases only: the cheapest possible regex per rule.
    WordsOnly,
}

impl Baseline {
    fn name(self) -> &'static str {
        match self {
            Baseline::AllTerms => "regex-per-rule/all-terms",
            Baseline::WordsOnly => "regex-per-rule/words-only",
        }
    }

    /// Items the baseline runs over at `rules` rules: all of them would take
    /// minutes per iteration.
    fn items(self, rules: usize) -> usize {
        match (self, rules) {
            (_, 1) => ITEMS,
            (Baseline::AllTerms, 100) => 500,
            (Baseline::AllTerms, _) => 50,
            (Baseline::WordsOnly, 100) => 2_000,
            (Baseline::WordsOnly, _) => 500,
        }
    }
}

/// The alternatives of a rule's positive terms (terms under NOT are dropped).
fn positive_alternatives(
    expr: &Expr,
    vocab: &Vocabulary,
    baseline: Baseline,
    out: &mut BTreeSet<String>,
) {
    let entities = baseline == Baseline::AllTerms;
    match expr {
        Expr::Text { words, prefix, .. } => {
            out.insert(words_pattern(words, *prefix));
        }
        Expr::Regex { pattern, .. } => {
            out.insert(pattern.clone());
        }
        Expr::Entity { name, .. } if entities => {
            let folded = name.to_lowercase();
            for (spec, forms) in vocab.specs.iter().zip(&vocab.entity_forms) {
                if spec.name.to_lowercase() == folded || spec.id == *name {
                    out.extend(forms.iter().map(|f| surface_pattern(f)));
                }
            }
        }
        Expr::Kind { kind, .. } if entities => {
            for (spec, forms) in vocab.specs.iter().zip(&vocab.entity_forms) {
                if spec.kind == *kind {
                    out.extend(forms.iter().map(|f| surface_pattern(f)));
                }
            }
        }
        Expr::Entity { .. } | Expr::Kind { .. } => {}
        Expr::And(children) | Expr::Or(children) => {
            for c in children {
                positive_alternatives(c, vocab, baseline, out);
            }
        }
        Expr::Near(a, b, _) => {
            positive_alternatives(a, vocab, baseline, out);
            positive_alternatives(b, vocab, baseline, out);
        }
        Expr::Not(_) => {}
    }
}

fn baseline_regexes(rules: &RuleSet, vocab: &Vocabulary, baseline: Baseline) -> Vec<regex::Regex> {
    rules
        .rules()
        .iter()
        .filter_map(|rule| {
            let mut alternatives = BTreeSet::new();
            positive_alternatives(&rule.expr, vocab, baseline, &mut alternatives);
            // A rule of entities only has no words-only regex.
            (!alternatives.is_empty()).then(|| {
                let pattern = alternatives.into_iter().collect::<Vec<_>>().join("|");
                regex::RegexBuilder::new(&pattern)
                    .size_limit(64 << 20)
                    .dfa_size_limit(64 << 20)
                    .build()
                    .unwrap_or_else(|e| panic!("baseline regex for {}: {e}", rule.id))
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Benchmarks
// ---------------------------------------------------------------------------

fn evaluate_all(rules: &RuleSet, docs: &[Document]) -> usize {
    docs.iter().map(|d| rules.evaluate(d).len()).sum()
}

fn fired_all(rules: &RuleSet, docs: &[Document]) -> usize {
    docs.iter().map(|d| rules.fired(d).len()).sum()
}

fn regex_all(regexes: &[regex::Regex], texts: &[String]) -> usize {
    texts
        .iter()
        .map(|t| regexes.iter().filter(|r| r.is_match(t)).count())
        .sum()
}

/// `RULES_BENCH_BREAKDOWN=1`: instead of benchmarking, time the parts of
/// `evaluate` once per rule count, using only the public API:
///
/// * `evaluate`: which rules fire, each explained with hits and snippets;
/// * `fired`: which rules fire, with the positions behind them, unexplained;
/// * `gated`: every rule rewritten as `absentword AND (rule)`, so that no rule
///   ever becomes a candidate: the scan for terms and the bookkeeping of
///   requirements, but no rule evaluated.
fn breakdown(docs: &[Document], all_rules: &[(String, String)], gazetteer: &Gazetteer) {
    let ms = |t: std::time::Instant| t.elapsed().as_secs_f64() * 1e3;
    for &n in &RULE_COUNTS {
        let rules = &all_rules[..n];
        let full = rules::compile(
            rules.iter().map(|(i, q)| (i.as_str(), q.as_str())),
            gazetteer,
        )
        .expect("compiles");
        let gated: Vec<String> = rules
            .iter()
            .enumerate()
            .map(|(i, (_, q))| format!("qqzabsent{i} AND ({q})"))
            .collect();
        let gated =
            rules::compile(gated.iter().map(|q| ("r", q.as_str())), gazetteer).expect("compiles");
        for round in 0..2 {
            let t = std::time::Instant::now();
            let matches = evaluate_all(&full, docs);
            let full_ms = ms(t);
            let t = std::time::Instant::now();
            let fired = fired_all(&full, docs);
            let fired_ms = ms(t);
            let t = std::time::Instant::now();
            let none = fired_all(&gated, docs);
            let gated_ms = ms(t);
            assert_eq!(none, 0);
            assert_eq!(fired, matches);
            eprintln!(
                "{n:>5} rules, round {round}: evaluate {full_ms:7.1} ms ({matches} matches) | \
                 fired {fired_ms:7.1} ms | gated {gated_ms:7.1} ms"
            );
        }
    }
}

/// Interleaved measurements for the two ratios the benchmark is about, so
/// that load from other processes on a shared machine affects both sides of
/// each ratio alike: 1,000 rules against 1 rule, and newswatch against the
/// regex-per-rule baselines at 1,000 rules (per item, on the same items).
fn ratios(
    items: &[Item],
    docs: &[Document],
    lowered: &[String],
    vocab: &Vocabulary,
    all_rules: &[(String, String)],
    gazetteer: &Gazetteer,
) {
    let compile = |rules: &[(String, String)]| {
        rules::compile(
            rules.iter().map(|(i, q)| (i.as_str(), q.as_str())),
            gazetteer,
        )
        .expect("generated rules compile")
    };
    let one = compile(&all_rules[..1]);
    let thousand = compile(&all_rules[..1_000]);
    let words_only = baseline_regexes(&thousand, vocab, Baseline::WordsOnly);
    let all_terms = baseline_regexes(&thousand, vocab, Baseline::AllTerms);
    let (n_words, n_all) = (
        Baseline::WordsOnly.items(1_000),
        Baseline::AllTerms.items(1_000),
    );
    let per_item_us = |start: std::time::Instant, items: usize| {
        start.elapsed().as_secs_f64() * 1e6 / items as f64
    };
    // Warm the lazy DFAs once, as criterion's warm-up does.
    let start = std::time::Instant::now();
    black_box(regex_all(&all_terms, &lowered[..n_all]));
    eprintln!(
        "all-terms regexes, first (cold) pass: {:.0} µs/item",
        per_item_us(start, n_all)
    );
    black_box(regex_all(&words_only, &lowered[..n_words]));
    for round in 0..3 {
        let start = std::time::Instant::now();
        black_box(fired_all(&one, docs));
        let t1 = per_item_us(start, docs.len());
        let start = std::time::Instant::now();
        black_box(fired_all(&thousand, docs));
        let t1000 = per_item_us(start, docs.len());
        let start = std::time::Instant::now();
        black_box(evaluate_all(&one, docs));
        let e1 = per_item_us(start, docs.len());
        let start = std::time::Instant::now();
        black_box(evaluate_all(&thousand, docs));
        let e1000 = per_item_us(start, docs.len());
        let start = std::time::Instant::now();
        black_box(regex_all(&words_only, &lowered[..n_words]));
        let tw = per_item_us(start, n_words);
        let start = std::time::Instant::now();
        black_box(regex_all(&all_terms, &lowered[..n_all]));
        let ta = per_item_us(start, n_all);
        eprintln!(
            "round {round}: fired: 1 rule {t1:.1} µs/item, 1,000 rules {t1000:.1} µs/item \
             (throughput ratio 1000/1 = {:.3}); evaluate (explained): {e1:.1} / {e1000:.1} µs/item \
             (ratio {:.3}); regex words-only {tw:.0} µs/item ({:.1}× fired, {:.1}× evaluate), \
             all-terms {ta:.0} µs/item ({:.1}× fired, {:.1}× evaluate)",
            t1 / t1000,
            e1 / e1000,
            tw / t1000,
            tw / e1000,
            ta / t1000,
            ta / e1000
        );
        // The whole per-item cost in the daemon: the item's text normalized,
        // tokenized and tagged with entities (`Document::new`), then matched.
        let whole = |set: &RuleSet| {
            let start = std::time::Instant::now();
            let fired: usize = items
                .iter()
                .map(|i| {
                    let doc = Document::new(&i.title, &i.summary, &i.content, gazetteer);
                    set.fired(&doc).len()
                })
                .sum();
            black_box(fired);
            per_item_us(start, items.len())
        };
        let (w1, w1000) = (whole(&one), whole(&thousand));
        // Of that, the normalization alone (folding and tokenizing the three
        // fields, no entity tagging): what any rule of words needs done first.
        let start = std::time::Instant::now();
        let tokens: usize = items
            .iter()
            .map(|i| {
                [&i.title, &i.summary, &i.content]
                    .map(|f| NormText::new(f.as_str()).tokens.len())
                    .iter()
                    .sum::<usize>()
            })
            .sum();
        black_box(tokens);
        let norm = per_item_us(start, items.len());
        eprintln!(
            "round {round}: Document::new + fired: 1 rule {w1:.1} µs/item, 1,000 rules \
             {w1000:.1} µs/item (throughput ratio 1000/1 = {:.3}; {:.0}× the all-terms \
             regexes, {:.1}× words-only); normalization alone {norm:.1} µs/item, with fired \
             {:.1} / {:.1} µs/item (ratio {:.3})",
            w1 / w1000,
            ta / w1000,
            tw / w1000,
            norm + t1,
            norm + t1000,
            (norm + t1) / (norm + t1000)
        );
    }
}

/// Median and range of a list of timings.
fn median_range(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    (median, sorted[0], sorted[n - 1])
}

/// `RULES_BENCH_COMPARE`: newswatch (`fired`: which rules fire, as `is_match`
/// tells for a regex) against both regex-per-rule baselines at
/// each rule count, in interleaved rounds (load from other processes then
/// affects all three alike). Times are per item: newswatch runs over every
/// item, each baseline over as many items as keep a round under a second or
/// so (the same first items for both baselines' share of the corpus).
fn compare(
    docs: &[Document],
    lowered: &[String],
    vocab: &Vocabulary,
    all_rules: &[(String, String)],
    gazetteer: &Gazetteer,
    counts: &[usize],
    rounds: usize,
) {
    for &n in counts {
        let set = rules::compile(
            all_rules[..n].iter().map(|(i, q)| (i.as_str(), q.as_str())),
            gazetteer,
        )
        .expect("generated rules compile");
        let words_only = baseline_regexes(&set, vocab, Baseline::WordsOnly);
        let all_terms = baseline_regexes(&set, vocab, Baseline::AllTerms);
        let n_words = (500_000 / n).clamp(50, docs.len());
        let n_all = (50_000 / n).clamp(50, docs.len());
        // Warm the lazy DFAs once, as criterion's warm-up does.
        black_box(regex_all(&words_only, &lowered[..n_words]));
        black_box(regex_all(&all_terms, &lowered[..n_all]));
        let per_item_us = |start: std::time::Instant, items: usize| {
            start.elapsed().as_secs_f64() * 1e6 / items as f64
        };
        let (mut ours, mut words, mut all) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let start = std::time::Instant::now();
            let fired = black_box(fired_all(&set, docs));
            ours.push(per_item_us(start, docs.len()));
            let start = std::time::Instant::now();
            black_box(regex_all(&words_only, &lowered[..n_words]));
            words.push(per_item_us(start, n_words));
            let start = std::time::Instant::now();
            black_box(regex_all(&all_terms, &lowered[..n_all]));
            all.push(per_item_us(start, n_all));
            eprintln!(
                "{n:>5} rules, round {round}: newswatch {:.2} µs/item ({fired} matches over {} items), \
                 regex words-only {:.1} µs/item ({n_words} items, {} regexes), \
                 all-terms {:.1} µs/item ({n_all} items, {} regexes)",
                ours[round],
                docs.len(),
                words[round],
                words_only.len(),
                all[round],
                all_terms.len()
            );
        }
        let (o, o_min, o_max) = median_range(&ours);
        let (w, w_min, w_max) = median_range(&words);
        let (a, a_min, a_max) = median_range(&all);
        println!(
            "compare: rules={n} rounds={rounds} newswatch_us={o:.3} [{o_min:.3}-{o_max:.3}] \
             words_only_us={w:.2} [{w_min:.2}-{w_max:.2}] all_terms_us={a:.2} [{a_min:.2}-{a_max:.2}] \
             ratio_words_only={:.1} ratio_all_terms={:.1} newswatch_items_per_s={:.0}",
            w / o,
            a / o,
            1e6 / o
        );
    }
}

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();

    let mut rng = Rng(SEED);
    let vocab = vocabulary(&mut rng);
    let gazetteer = Gazetteer::builtin();
    let items = items(&mut rng, &vocab);
    let total_bytes: usize = items.iter().map(Item::len).sum();
    let docs: Vec<Document> = items
        .iter()
        .map(|i| Document::new(&i.title, &i.summary, &i.content, &gazetteer))
        .collect();
    let lowered: Vec<String> = items
        .iter()
        .map(|i| format!("{}\n{}\n{}", i.title, i.summary, i.content).to_lowercase())
        .collect();
    let tokens: usize = docs
        .iter()
        .map(|d| d.fields.iter().map(|f| f.tokens.len()).sum::<usize>())
        .sum();
    let mentions: usize = docs.iter().map(|d| d.mentions.len()).sum();
    eprintln!(
        "corpus: {ITEMS} items, {total_bytes} bytes ({} bytes/item), {} tokens/item, \
         {:.1} entity mentions/item; vocabulary {} words + {} entities",
        total_bytes / ITEMS,
        tokens / ITEMS,
        mentions as f64 / ITEMS as f64,
        vocab.words.len(),
        vocab.specs.len(),
    );

    // The first N rules of one generated list, so the 1-rule set is part of
    // the 100-rule set, which is part of the 1,000-rule set.
    let max_rules = *RULE_COUNTS.iter().max().expect("rule counts");
    let all_rules = generate_rules(&mut rng, &vocab, &gazetteer, max_rules);
    eprintln!("example rules:");
    for (id, q) in all_rules.iter().take(SHAPES) {
        eprintln!("  {id}: {q}");
    }
    if let Some(n) = std::env::var("RULES_BENCH_PROFILE")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        // Only `fired` (`evaluate` with RULES_BENCH_EXPLAIN=1) with the first n
        // rules, RULES_BENCH_PASSES (default 20) times over: for `perf record`
        // or callgrind.
        let rules = &all_rules[..n.min(max_rules)];
        let set = rules::compile(
            rules.iter().map(|(i, q)| (i.as_str(), q.as_str())),
            &gazetteer,
        )
        .expect("generated rules compile");
        let start = std::time::Instant::now();
        let passes = std::env::var("RULES_BENCH_PASSES")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(20);
        let explain = std::env::var_os("RULES_BENCH_EXPLAIN").is_some();
        // RULES_BENCH_DOCS=k: the first k items, repeated to the same total,
        // so that caches and the branch predictor can learn them.
        let first = std::env::var("RULES_BENCH_DOCS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .map_or(docs.len(), |k| k.clamp(1, docs.len()));
        let docs: Vec<&Document> = docs[..first].iter().cycle().take(docs.len()).collect();
        let matches: usize = (0..passes)
            .map(|_| {
                if explain {
                    docs.iter().map(|d| set.evaluate(d).len()).sum()
                } else {
                    docs.iter().map(|d| set.fired(d).len()).sum::<usize>()
                }
            })
            .sum();
        eprintln!(
            "{} rules: {passes} × evaluate in {:?} ({matches} matches)",
            rules.len(),
            start.elapsed()
        );
        return;
    }
    if let Ok(counts) = std::env::var("RULES_BENCH_COMPARE") {
        let counts: Vec<usize> = counts
            .split(',')
            .filter_map(|c| c.trim().parse().ok())
            .filter(|&c| c > 0)
            .map(|c: usize| c.min(max_rules))
            .collect();
        let rounds = std::env::var("RULES_BENCH_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&r: &usize| r > 0)
            .unwrap_or(5);
        compare(
            &docs, &lowered, &vocab, &all_rules, &gazetteer, &counts, rounds,
        );
        return;
    }
    if std::env::var_os("RULES_BENCH_RATIOS").is_some() {
        ratios(&items, &docs, &lowered, &vocab, &all_rules, &gazetteer);
        return;
    }
    if std::env::var_os("RULES_BENCH_BREAKDOWN").is_some() {
        breakdown(&docs, &all_rules, &gazetteer);
        return;
    }

    let mut sets: HashMap<usize, RuleSet> = HashMap::new();
    for &n in &RULE_COUNTS {
        let set = rules::compile(
            all_rules[..n]
                .iter()
                .map(|(id, q)| (id.as_str(), q.as_str())),
            &gazetteer,
        )
        .unwrap_or_else(|e| panic!("generated rules compile: {:?}", &e[..e.len().min(3)]));
        let mut per_shape = [0usize; SHAPES];
        let mut items_hit = 0;
        let mut matches = 0;
        for d in &docs {
            let fired = set.evaluate(d);
            items_hit += usize::from(!fired.is_empty());
            matches += fired.len();
            for m in fired {
                per_shape[m.rule % SHAPES] += 1;
            }
        }
        eprintln!(
            "{n:>5} rules: {items_hit} of {ITEMS} items ({:.2}%) fire at least one rule; {matches} rule matches",
            100.0 * items_hit as f64 / ITEMS as f64,
        );
        if n == max_rules {
            let rates: Vec<String> = per_shape
                .iter()
                .enumerate()
                .map(|(s, &c)| {
                    format!(
                        "{s}: {:.3}%",
                        100.0 * c as f64 / ((n / SHAPES) * ITEMS) as f64
                    )
                })
                .collect();
            eprintln!(
                "       share of items each rule fires on, by shape: {}",
                rates.join(", ")
            );
        }
        sets.insert(n, set);
    }

    {
        let mut group = criterion.benchmark_group("newswatch");
        group.sampling_mode(SamplingMode::Flat);
        group.throughput(Throughput::Bytes(total_bytes as u64));
        for &n in &RULE_COUNTS {
            let set = &sets[&n];
            group.bench_with_input(BenchmarkId::new("fired", n), &n, |b, _| {
                b.iter(|| black_box(fired_all(set, black_box(&docs))))
            });
            group.bench_with_input(BenchmarkId::new("evaluate", n), &n, |b, _| {
                b.iter(|| black_box(evaluate_all(set, black_box(&docs))))
            });
        }
        // What every rule count adds to the match: folding and tokenizing
        // the three fields (no entity tagging).
        group.bench_function("normalize", |b| {
            b.iter(|| {
                let mut tokens = 0;
                for item in black_box(&items) {
                    for field in [&item.title, &item.summary, &item.content] {
                        tokens += NormText::new(field.as_str()).tokens.len();
                    }
                }
                black_box(tokens)
            })
        });
        let set = &sets[&max_rules];
        group.bench_function(BenchmarkId::new("document+evaluate", max_rules), |b| {
            b.iter(|| {
                let mut fired = 0;
                for item in black_box(&items) {
                    let doc = Document::new(&item.title, &item.summary, &item.content, &gazetteer);
                    fired += set.evaluate(&doc).len();
                }
                black_box(fired)
            })
        });
        group.finish();
    }

    for baseline in [Baseline::WordsOnly, Baseline::AllTerms] {
        let mut group = criterion.benchmark_group(baseline.name());
        group.sampling_mode(SamplingMode::Flat);
        for &n in &RULE_COUNTS {
            let regexes = baseline_regexes(&sets[&n], &vocab, baseline);
            let subset = baseline.items(n);
            let texts = &lowered[..subset];
            let bytes: usize = items[..subset].iter().map(Item::len).sum();
            eprintln!(
                "{}/{n}: {} regexes over the first {subset} items ({bytes} bytes)",
                baseline.name(),
                regexes.len()
            );
            group.throughput(Throughput::Bytes(bytes as u64));
            group.bench_with_input(BenchmarkId::new("is_match", n), &n, |b, _| {
                b.iter(|| black_box(regex_all(&regexes, black_box(texts))))
            });
        }
        group.finish();
    }

    criterion.final_summary();
}
