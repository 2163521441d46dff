//! Entity tagging throughput.
//!
//! A fixed-seed generator builds 10,000 news-like items of about 3 KB each
//! (title of ~10 words, summary of ~40 words, content for the rest) from a
//! vocabulary of common English words with entity names from the built-in
//! gazetteer mixed in: country names, demonyms, capitals, people,
//! organisations and places, at a few percent of all tokens. Three benchmarks:
//!
//! * `entities/document_new`: `Document::new` over every item (normalize + tag);
//! * `entities/tag_only`: `Gazetteer::tag` over pre-built `NormText` triples;
//! * `gazetteer/builtin`: building `Gazetteer::builtin()` from the embedded file.
//!
//! Throughput is reported in bytes of original text (title + summary +
//! content); one iteration processes all 10,000 items, so items/s is
//! 10,000 / (time per iteration). Run with `cargo bench --bench entities`.

mod support;
use support::SplitMix64;

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use newswatch::document::Document;
use newswatch::entities::{BUILTIN_ENTITIES, Gazetteer, GazetteerFile};
use newswatch::text::NormText;

const ITEMS: usize = 10_000;
const ITEM_BYTES: usize = 3_000;
const TITLE_WORDS: usize = 10;
const SUMMARY_WORDS: usize = 40;
/// Probability that the next token slot holds an entity mention instead of a
/// common word. Mentions average ~1.4 tokens, so roughly 3% of tokens.
const ENTITY_RATE: f64 = 0.022;
const SEED: u64 = 0x6e65_7773_7761_7463; // "newswatc"

/// Common English words of news prose. Words that would themselves tag as an
/// entity are filtered out at start-up, so every mention comes from the pool.
const VOCABULARY: &str = "
the of and to in a is that for on said with as was at by it from
be have has had were are not but or an which their its they he she his her
will would could should may might can also after before over under about
more than most new first last year years week month day days time people
government minister president officials official talks meeting agreement
deal trade economy market markets prices oil gas energy security defence
military troops forces army navy border region city country countries
capital state states national international foreign domestic policy
political election vote voters party leader leaders parliament court law
report reports reported according statement spokesman spokeswoman
announced warned called urged told added expected plans plan support
against between during while where when since until amid despite
further major senior local public private company companies bank banks
growth inflation rates rate tax budget spending debt million billion
percent cent number several many some few other another both each every
this these those there here then now still already again only just even
very much well back down up out into through across around near far
high low large small long short early late recent latest former next
week weekend morning evening night today yesterday tomorrow season
attack attacks strike strikes missile missiles drone drones ceasefire
peace war conflict crisis aid humanitarian refugees migrants children
health hospital water food power supply supplies shipping ships port
talks summit visit trip delegation envoy ambassador embassy mission
sanctions tariffs exports imports industry workers jobs unions strike
climate weather storm flood fire heat drought emissions coal solar wind
technology data internet online network phone software chips research
study students school university science space launch satellite
police arrest arrested charged trial judge ruling appeal prison case
protest protests demonstrators crowd rally campaign candidate poll
result results win won lost match team players coach game final cup
";

/// A mention to drop into generated text, with a weight class.
struct Pools {
    countries: Vec<String>,
    demonyms: Vec<String>,
    capitals: Vec<String>,
    persons: Vec<String>,
    orgs: Vec<String>,
    places: Vec<String>,
}

impl Pools {
    fn from_builtin() -> Pools {
        let file = GazetteerFile::parse(BUILTIN_ENTITIES, "entities.toml")
            .expect("the embedded gazetteer parses");
        let mut pools = Pools {
            countries: Vec::new(),
            demonyms: Vec::new(),
            capitals: Vec::new(),
            persons: Vec::new(),
            orgs: Vec::new(),
            places: Vec::new(),
        };
        for spec in &file.entity {
            // Names and aliases as written; `cased` forms are written exactly
            // as the tagger requires them.
            let names = std::iter::once(&spec.name)
                .chain(&spec.aliases)
                .chain(&spec.cased)
                .cloned();
            match spec.kind.as_str() {
                "country" => {
                    pools.countries.extend(names);
                    pools.demonyms.extend(spec.demonyms.iter().cloned());
                    pools
                        .capitals
                        .extend(spec.links.iter().map(|l| l.name.clone()));
                }
                "person" => pools.persons.extend(names),
                "org" => pools.orgs.extend(names),
                _ => {
                    pools.places.extend(names);
                    pools.demonyms.extend(spec.demonyms.iter().cloned());
                }
            }
        }
        pools
    }

    fn mention(&self, rng: &mut SplitMix64) -> &str {
        let pool = match rng.below(100) {
            0..30 => &self.countries,
            30..55 => &self.demonyms,
            55..67 => &self.capitals,
            67..82 => &self.persons,
            82..94 => &self.orgs,
            _ => &self.places,
        };
        rng.pick(pool).as_str()
    }
}

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

struct Generator {
    rng: SplitMix64,
    words: Vec<&'static str>,
    pools: Pools,
}

impl Generator {
    fn new(gazetteer: &Gazetteer) -> Generator {
        let words = VOCABULARY
            .split_whitespace()
            .filter(|w| {
                let fields = [NormText::new(*w), NormText::default(), NormText::default()];
                gazetteer.tag(&fields).is_empty()
            })
            .collect();
        Generator {
            rng: SplitMix64(SEED),
            words,
            pools: Pools::from_builtin(),
        }
    }

    /// Appends one token slot: a common word or, now and then, an entity mention.
    fn push_token(&mut self, out: &mut String, capitalize: bool) {
        if self.rng.unit() < ENTITY_RATE {
            let name = self.pools.mention(&mut self.rng);
            out.push_str(name);
            if self.rng.below(8) == 0 {
                out.push_str("'s");
            }
        } else {
            let word = *self.rng.pick(&self.words);
            let mut chars = word.chars();
            match (capitalize, chars.next()) {
                (true, Some(first)) => {
                    out.extend(first.to_uppercase());
                    out.push_str(chars.as_str());
                }
                _ => out.push_str(word),
            }
        }
    }

    /// A sentence of `words` token slots with occasional commas.
    fn sentence(&mut self, out: &mut String, words: usize) {
        for i in 0..words {
            if i > 0 {
                out.push_str(if self.rng.below(12) == 0 { ", " } else { " " });
            }
            self.push_token(out, i == 0);
        }
        out.push('.');
    }

    fn item(&mut self) -> Item {
        let mut title = String::new();
        let title_words = TITLE_WORDS - 2 + self.rng.below(5);
        for i in 0..title_words {
            if i > 0 {
                title.push(' ');
            }
            self.push_token(&mut title, i == 0);
        }

        let mut summary = String::new();
        let mut left = SUMMARY_WORDS - 5 + self.rng.below(11);
        while left > 0 {
            let n = left.min(8 + self.rng.below(14));
            if !summary.is_empty() {
                summary.push(' ');
            }
            self.sentence(&mut summary, n);
            left -= n;
        }

        let target = ITEM_BYTES - 300 + self.rng.below(601);
        let mut content = String::new();
        let mut in_paragraph = 0;
        while title.len() + summary.len() + content.len() < target {
            if !content.is_empty() {
                if in_paragraph >= 3 + self.rng.below(3) {
                    content.push_str("\n\n");
                    in_paragraph = 0;
                } else {
                    content.push(' ');
                }
            }
            let n = 6 + self.rng.below(20);
            self.sentence(&mut content, n);
            in_paragraph += 1;
        }
        Item {
            title,
            summary,
            content,
        }
    }
}

fn gazetteer() -> &'static Gazetteer {
    static GAZETTEER: OnceLock<Gazetteer> = OnceLock::new();
    GAZETTEER.get_or_init(|| {
        let start = Instant::now();
        let g = Gazetteer::builtin();
        eprintln!(
            "Gazetteer::builtin(): {:.1} ms (first build, {} entities)",
            start.elapsed().as_secs_f64() * 1e3,
            g.entities().len()
        );
        g
    })
}

fn corpus() -> &'static [Item] {
    static CORPUS: OnceLock<Vec<Item>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let g = gazetteer();
        let mut generator = Generator::new(g);
        let items: Vec<Item> = (0..ITEMS).map(|_| generator.item()).collect();
        // Describe the data once, so the throughput numbers can be interpreted.
        let bytes: usize = items.iter().map(Item::len).sum();
        let (mut tokens, mut mention_tokens, mut mentions) = (0usize, 0usize, 0usize);
        for item in &items {
            let doc = Document::new(&item.title, &item.summary, &item.content, g);
            tokens += doc.fields.iter().map(|f| f.tokens.len()).sum::<usize>();
            mentions += doc.mentions.len();
            mention_tokens += doc
                .mentions
                .iter()
                .map(|m| (m.end - m.start) as usize)
                .sum::<usize>();
        }
        eprintln!(
            "corpus: {} items, {:.1} MB, {} bytes/item, {} tokens, {} mentions \
             ({:.2} per item, {:.1}% of tokens in mentions)",
            items.len(),
            bytes as f64 / 1e6,
            bytes / items.len(),
            tokens,
            mentions,
            mentions as f64 / items.len() as f64,
            100.0 * mention_tokens as f64 / tokens as f64
        );
        items
    })
}

fn corpus_bytes(items: &[Item]) -> u64 {
    items.iter().map(|i| i.len() as u64).sum()
}

fn bench_tagging(c: &mut Criterion) {
    let g = gazetteer();
    let items = corpus();
    let bytes = corpus_bytes(items);

    let mut group = c.benchmark_group("entities");
    group
        .sample_size(10)
        // One iteration is the whole corpus (a fraction of a second): flat
        // sampling keeps the run short and predictable.
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(12))
        .throughput(Throughput::Bytes(bytes));

    group.bench_function("document_new", |b| {
        b.iter(|| {
            let mut mentions = 0;
            for item in items {
                let doc = Document::new(&item.title, &item.summary, &item.content, g);
                mentions += black_box(&doc).mentions.len();
            }
            mentions
        })
    });

    let fields: Vec<[NormText; 3]> = items
        .iter()
        .map(|i| {
            [
                NormText::new(i.title.as_str()),
                NormText::new(i.summary.as_str()),
                NormText::new(i.content.as_str()),
            ]
        })
        .collect();
    group.bench_function("tag_only", |b| {
        b.iter(|| {
            let mut mentions = 0;
            for f in &fields {
                mentions += black_box(g.tag(black_box(f))).len();
            }
            mentions
        })
    });
    group.finish();
}

fn bench_build(c: &mut Criterion) {
    let _ = gazetteer(); // prints the one-shot first-build time
    let mut group = c.benchmark_group("gazetteer");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group.bench_function("builtin", |b| b.iter(Gazetteer::builtin));
    group.finish();
}

criterion_group!(benches, bench_build, bench_tagging);
criterion_main!(benches);
