//! Entities: who and where an item is about.
//!
//! A [`Gazetteer`] is a list of named entities (countries, organisations,
//! people, places, or kinds a user defines), each with aliases, demonyms and
//! linked places ("Pyongyang" standing for North Korea). It compiles every name
//! into its folded words ([`crate::text`]) and tags a text by looking its
//! folded tokens up in hash maps, a pass per field whatever the size of the
//! gazetteer. Tagging returns [`Mention`]s; rules and alerts decide what to do
//! with them. This module never reads feeds or writes state.

mod gazetteer;
mod names;
mod variants;

pub use gazetteer::{EntityFileError, EntitySpec, GazetteerFile, LinkSpec};
pub use names::{GuessedName, guess_names};

/// Entity ids at or above this refer to guessed names of a document
/// (`id - GUESSED_BASE` indexes [`crate::document::Document::guessed_names`]).
pub const GUESSED_BASE: u32 = 0x8000_0000;

/// Index of the `person` kind, which every gazetteer has.
pub const PERSON_KIND: u32 = 2;

use std::collections::HashMap;

use serde::Serialize;

use crate::document::Field;
use crate::text::{NormText, fold_words, word_ranges};

/// The default gazetteer, embedded in the binary.
pub const BUILTIN_ENTITIES: &str = include_str!("../../config/entities.toml");

/// Kinds every gazetteer knows, whether or not it has entities of them.
pub const BASE_KINDS: [&str; 4] = ["country", "org", "person", "place"];

/// How a mention named its entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Name,
    Alias,
    Demonym,
    /// A linked place (a capital standing for its country).
    Link,
}

/// One occurrence of an entity in a document field (token indices, end exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mention {
    pub entity: u32,
    pub field: Field,
    pub start: u32,
    pub end: u32,
    pub via: Via,
    /// True when the entity was proposed by the name heuristic, not the gazetteer.
    pub guessed: bool,
}

/// A resolved entity.
#[derive(Debug, Clone)]
pub struct Entity {
    pub id: String,
    pub name: String,
    pub kind: u32,
    pub role: Option<String>,
    pub country: Option<String>,
}

#[derive(Debug, Clone)]
struct Target {
    entity: u32,
    via: Via,
    /// When set, the original tokens must equal these exactly (case-sensitive short forms).
    cased: Option<Vec<String>>,
}

/// The entities one sequence of folded words can name.
#[derive(Debug, Clone)]
struct Pattern {
    targets: Vec<Target>,
}

/// A hash map with a fast hasher, for the short keys looked up per token.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// A compiled gazetteer.
#[derive(Debug, Clone)]
pub struct Gazetteer {
    entities: Vec<Entity>,
    kinds: Vec<String>,
    by_key: HashMap<String, u32>,
    patterns: Vec<Pattern>,
    /// Pattern index by folded words joined by single spaces ("north korea"),
    /// which is how they appear in [`NormText::folded`].
    pattern_by_words: FastMap<Box<str>, u32>,
    /// For each folded word that opens a pattern, the most words of a
    /// pattern it opens.
    longest_from: FastMap<Box<[u8]>, u32>,
    /// [`opener_class`] of every word in `longest_from`, as a bit set: most
    /// tokens open no name, and this rules them out without hashing.
    opener_classes: Box<[u64; 256]>,
}

/// A cheap fingerprint of a folded word (from its length and first, second
/// and last bytes), for [`Gazetteer::opener_classes`].
fn opener_class(word: &[u8]) -> usize {
    let byte = |i: usize| usize::from(word.get(i).copied().unwrap_or(0));
    let last = usize::from(word.last().copied().unwrap_or(0));
    (byte(0) ^ (byte(1) << 5) ^ (last << 9) ^ (word.len() << 3)) & 0x3FFF
}

impl Gazetteer {
    /// The embedded default gazetteer.
    pub fn builtin() -> Gazetteer {
        let file = GazetteerFile::parse(BUILTIN_ENTITIES, "<builtin entities.toml>")
            .expect("the embedded gazetteer is valid: a unit test parses it");
        Gazetteer::build(vec![file])
    }

    /// An empty gazetteer (no entities, base kinds only).
    pub fn empty() -> Gazetteer {
        Gazetteer::build(Vec::new())
    }

    /// Compiles gazetteer files; an entity in a later file replaces one with
    /// the same id in an earlier file.
    pub fn build(files: Vec<GazetteerFile>) -> Gazetteer {
        let mut specs: Vec<EntitySpec> = Vec::new();
        let mut index_of: HashMap<String, usize> = HashMap::new();
        for file in files {
            for spec in file.entity {
                match index_of.get(&spec.id) {
                    Some(&i) => specs[i] = spec,
                    None => {
                        index_of.insert(spec.id.clone(), specs.len());
                        specs.push(spec);
                    }
                }
            }
        }

        let mut kinds: Vec<String> = BASE_KINDS.iter().map(|k| k.to_string()).collect();
        let mut entities = Vec::with_capacity(specs.len());
        let mut by_key = HashMap::new();
        let mut pattern_of: HashMap<String, usize> = HashMap::new();
        let mut patterns: Vec<Pattern> = Vec::new();

        // Later files take precedence for ambiguous names: add them first.
        for (idx, spec) in specs.iter().enumerate().rev() {
            let entity = idx as u32;
            let kind = match kinds.iter().position(|k| *k == spec.kind) {
                Some(k) => k as u32,
                None => {
                    kinds.push(spec.kind.clone());
                    (kinds.len() - 1) as u32
                }
            };
            entities.push((
                idx,
                Entity {
                    id: spec.id.clone(),
                    name: spec.name.clone(),
                    kind,
                    role: spec.role.clone(),
                    country: spec.country.clone(),
                },
            ));
            by_key.insert(spec.id.clone(), entity);

            let mut add = |name: &str, via: Via, cased: bool| {
                let words = fold_words(name);
                if words.is_empty() {
                    return;
                }
                let key = words.join(" ");
                // Rules name entities case-insensitively, cased names included.
                by_key.entry(key.clone()).or_insert(entity);
                let cased = cased.then(|| {
                    let mut original = Vec::new();
                    for range in word_ranges(name) {
                        original.push(name[range].to_string());
                    }
                    original
                });
                let slot = *pattern_of.entry(key.clone()).or_insert_with(|| {
                    patterns.push(Pattern {
                        targets: Vec::new(),
                    });
                    patterns.len() - 1
                });
                let targets = &mut patterns[slot].targets;
                if !targets
                    .iter()
                    .any(|t| t.entity == entity && t.cased == cased)
                {
                    targets.push(Target { entity, via, cased });
                }
            };

            let cased_only = |name: &str| spec.cased.iter().any(|c| c == name);
            if !cased_only(&spec.name) {
                add(&spec.name, Via::Name, false);
            }
            for alias in &spec.aliases {
                add(alias, Via::Alias, false);
            }
            if spec.kind == "person" {
                // A cased-only name stays cased: its variants are not generated.
                let names: Vec<&str> = std::iter::once(spec.name.as_str())
                    .filter(|n| !cased_only(n))
                    .chain(spec.aliases.iter().map(String::as_str))
                    .collect();
                for alias in variants::person_variants(&names) {
                    add(&alias, Via::Alias, false);
                }
            }
            for cased in &spec.cased {
                add(cased, Via::Alias, true);
            }
            for demonym in &spec.demonyms {
                add(demonym, Via::Demonym, false);
            }
            for link in &spec.links {
                add(&link.name, Via::Link, false);
            }
        }
        entities.sort_by_key(|(idx, _)| *idx);
        let entities = entities.into_iter().map(|(_, e)| e).collect();

        let mut longest_from: FastMap<Box<[u8]>, u32> = FastMap::default();
        let mut opener_classes = Box::new([0u64; 256]);
        for key in pattern_of.keys() {
            let mut words = key.split(' ');
            let first = words.next().unwrap_or_default().as_bytes();
            let count = 1 + words.count() as u32;
            let longest = longest_from.entry(first.into()).or_default();
            *longest = (*longest).max(count);
            let class = opener_class(first);
            opener_classes[class / 64] |= 1 << (class % 64);
        }
        let pattern_by_words = pattern_of
            .into_iter()
            .map(|(key, slot)| (key.into_boxed_str(), slot as u32))
            .collect();
        Gazetteer {
            entities,
            kinds,
            by_key,
            patterns,
            pattern_by_words,
            longest_from,
            opener_classes,
        }
    }

    pub fn entities(&self) -> &[Entity] {
        &self.entities
    }

    pub fn entity(&self, index: u32) -> &Entity {
        &self.entities[index as usize]
    }

    pub fn kinds(&self) -> &[String] {
        &self.kinds
    }

    pub fn kind_name(&self, kind: u32) -> &str {
        &self.kinds[kind as usize]
    }

    pub fn kind_id(&self, name: &str) -> Option<u32> {
        self.kinds.iter().position(|k| k == name).map(|k| k as u32)
    }

    /// Finds an entity by id, canonical name or any case-insensitive alias.
    pub fn lookup(&self, name: &str) -> Option<u32> {
        if let Some(&e) = self.by_key.get(name) {
            return Some(e);
        }
        self.by_key.get(&fold_words(name).join(" ")).copied()
    }

    /// The canonical names of all entities, for "did you mean" suggestions.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entities.iter().map(|e| e.name.as_str())
    }

    /// Finds every entity mention in the three fields. Overlapping candidates
    /// resolve to the longest ("North Korea", not "Korea"); short forms listed
    /// as `cased` only count with their exact capitalisation.
    pub fn tag(&self, fields: &[NormText; 3]) -> Vec<Mention> {
        let mut mentions = Vec::new();
        if self.patterns.is_empty() {
            return mentions;
        }
        let mut candidates: Vec<(u32, u32, u32, Via)> = Vec::new();
        for field in Field::ALL {
            let text = &fields[field as usize];
            candidates.clear();
            let tokens = text.tokens.len();
            for start in 0..tokens {
                let first = text.folded_token_bytes(start);
                let class = opener_class(first);
                if self.opener_classes[class / 64] & 1 << (class % 64) == 0 {
                    continue;
                }
                let Some(&longest) = self.longest_from.get(first) else {
                    continue;
                };
                let longest = (start + longest as usize).min(tokens);
                for end in start + 1..=longest {
                    let words = text.folded_words(start, end - 1);
                    let Some(&slot) = self.pattern_by_words.get(words) else {
                        continue;
                    };
                    let pattern = &self.patterns[slot as usize];
                    let target = pattern.targets.iter().find(|t| match &t.cased {
                        None => true,
                        Some(words) => words.iter().enumerate().all(|(i, w)| {
                            text.tokens.get(start + i).is_some_and(|tok| {
                                text.original[tok.start as usize..tok.end as usize] == **w
                            })
                        }),
                    });
                    if let Some(target) = target {
                        candidates.push((start as u32, end as u32, target.entity, target.via));
                    }
                }
            }
            candidates.sort_by_key(|&(start, end, _, _)| (start, std::cmp::Reverse(end)));
            let mut taken_until = 0;
            for &(start, end, entity, via) in &candidates {
                if start < taken_until {
                    continue;
                }
                taken_until = end;
                mentions.push(Mention {
                    entity,
                    field,
                    start,
                    end,
                    via,
                    guessed: false,
                });
            }
        }
        mentions
    }
}

/// Distinct entities mentioned in a document with their mention counts, most
/// mentioned first.
pub fn summarize(mentions: &[Mention]) -> Vec<(u32, usize)> {
    let mut counts: HashMap<u32, usize> = HashMap::new();
    for m in mentions {
        *counts.entry(m.entity).or_default() += 1;
    }
    let mut out: Vec<(u32, usize)> = counts.into_iter().collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// Edit distance counting insertions, deletions, substitutions and swaps of
/// adjacent characters ("titel" is one step from "title"), for "did you mean" hints.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let folded = word.to_lowercase();
    candidates
        .map(|c| (edit_distance(&folded, &c.to_lowercase()), c))
        .filter(|&(d, c)| d <= (c.chars().count() / 3).max(1))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use proptest::prelude::*;

    use super::*;

    fn gazetteer(toml: &str) -> Gazetteer {
        Gazetteer::build(vec![GazetteerFile::parse(toml, "test.toml").unwrap()])
    }

    const SMALL: &str = r#"
[[entity]]
id = "kp"
name = "North Korea"
kind = "country"
aliases = ["DPRK"]
demonyms = ["North Korean", "North Koreans"]
links = [{ name = "Pyongyang", relation = "capital" }]

[[entity]]
id = "kr"
name = "South Korea"
kind = "country"
aliases = ["Korea"]

[[entity]]
id = "ru"
name = "Russia"
kind = "country"
demonyms = ["Russian", "Russians"]
links = [{ name = "Moscow", relation = "capital" }]

[[entity]]
id = "us"
name = "United States"
kind = "country"
cased = ["US", "U.S."]

[[entity]]
id = "zelenskyy"
name = "Volodymyr Zelenskyy"
kind = "person"
aliases = ["Zelenskyy"]
"#;

    fn tag_names(g: &Gazetteer, text: &str) -> Vec<String> {
        let fields = [
            NormText::new(text),
            NormText::default(),
            NormText::default(),
        ];
        g.tag(&fields)
            .iter()
            .map(|m| g.entity(m.entity).name.clone())
            .collect()
    }

    #[test]
    fn longest_match_and_links() {
        let g = gazetteer(SMALL);
        assert_eq!(
            tag_names(&g, "North Korea's troops; Moscow-Pyongyang ties, Korea"),
            ["North Korea", "Russia", "North Korea", "South Korea"]
        );
        assert_eq!(tag_names(&g, "North Korean soldiers"), ["North Korea"]);
    }

    #[test]
    fn cased_short_forms() {
        let g = gazetteer(SMALL);
        assert_eq!(
            tag_names(&g, "US and U.S. troops"),
            ["United States", "United States"]
        );
        assert!(tag_names(&g, "let us go, Us too").is_empty());
    }

    #[test]
    fn person_spelling_variants() {
        let g = gazetteer(SMALL);
        for text in [
            "Zelensky said",
            "Zelenskiy said",
            "Selenskyj sagte",
            "ZELENSKYY",
        ] {
            assert_eq!(tag_names(&g, text), ["Volodymyr Zelenskyy"], "{text}");
        }
    }

    #[test]
    fn cased_person_names_stay_cased() {
        let g = gazetteer(
            r#"
[[entity]]
id = "chad-person"
name = "Chad"
kind = "person"
cased = ["Chad"]
"#,
        );
        assert!(tag_names(&g, "a hanging chad").is_empty());
        assert_eq!(tag_names(&g, "Chad said"), ["Chad"]);
    }

    #[test]
    fn lookup_by_id_name_alias() {
        let g = gazetteer(SMALL);
        assert_eq!(g.lookup("kp"), g.lookup("north korea"));
        assert_eq!(g.lookup("DPRK"), g.lookup("North Korea"));
        assert!(g.lookup("Atlantis").is_none());
        assert_eq!(g.kind_id("person"), Some(2));
    }

    #[test]
    fn later_file_overrides_by_id() {
        let user = r#"
[[entity]]
id = "kp"
name = "DPRK (North Korea)"
kind = "country"
aliases = ["Hermit Kingdom"]
"#;
        let g = Gazetteer::build(vec![
            GazetteerFile::parse(SMALL, "a").unwrap(),
            GazetteerFile::parse(user, "b").unwrap(),
        ]);
        assert_eq!(tag_names(&g, "the Hermit Kingdom"), ["DPRK (North Korea)"]);
        assert!(tag_names(&g, "Pyongyang").is_empty());
    }

    #[test]
    fn builtin_gazetteer_parses() {
        let g = Gazetteer::builtin();
        assert!(g.entities().len() > 250, "{}", g.entities().len());
    }

    #[test]
    fn did_you_mean_suggests_close_names() {
        assert_eq!(
            did_you_mean("contry", BASE_KINDS.into_iter()),
            Some("country")
        );
        assert_eq!(did_you_mean("banana", BASE_KINDS.into_iter()), None);
    }

    /// Tagging as first written: every occurrence of a pattern's folded
    /// words framed by spaces (`" north korea "`) in the folded text,
    /// overlapping ones included, found here by brute force where it used an
    /// Aho-Corasick automaton; then the same choice of target and of the
    /// longest of overlapping candidates.
    fn reference_tag(g: &Gazetteer, fields: &[NormText; 3]) -> Vec<Mention> {
        let mut mentions = Vec::new();
        for field in Field::ALL {
            let text = &fields[field as usize];
            let mut candidates = Vec::new();
            for (words, &slot) in &g.pattern_by_words {
                let needle = format!(" {words} ");
                let tokens = needle.split(' ').filter(|w| !w.is_empty()).count();
                for at in 0..text.folded.len() {
                    if !text.folded.is_char_boundary(at) || !text.folded[at..].starts_with(&needle)
                    {
                        continue;
                    }
                    let Some(start) = text.token_at_folded(at + 1) else {
                        continue;
                    };
                    let end = start + tokens;
                    let pattern = &g.patterns[slot as usize];
                    let target = pattern.targets.iter().find(|t| match &t.cased {
                        None => true,
                        Some(words) => words.iter().enumerate().all(|(i, w)| {
                            let tok = text.tokens[start + i];
                            text.original[tok.start as usize..tok.end as usize] == **w
                        }),
                    });
                    if let Some(target) = target {
                        candidates.push((start as u32, end as u32, target.entity, target.via));
                    }
                }
            }
            candidates.sort_by_key(|&(start, end, _, _)| (start, std::cmp::Reverse(end)));
            let mut taken_until = 0;
            for &(start, end, entity, via) in &candidates {
                if start < taken_until {
                    continue;
                }
                taken_until = end;
                mentions.push(Mention {
                    entity,
                    field,
                    start,
                    end,
                    via,
                    guessed: false,
                });
            }
        }
        mentions
    }

    static BUILTIN: LazyLock<Gazetteer> = LazyLock::new(Gazetteer::builtin);

    /// Surface forms of the built-in entities (names, aliases, cased short
    /// forms, demonyms, linked places) in the case written and in others.
    static SURFACES: LazyLock<Vec<String>> = LazyLock::new(|| {
        let file = GazetteerFile::parse(BUILTIN_ENTITIES, "builtin").unwrap();
        let mut out = Vec::new();
        for spec in file.entity {
            out.push(spec.name.clone());
            out.push(spec.name.to_uppercase());
            out.push(spec.name.to_lowercase());
            out.extend(spec.aliases);
            out.extend(spec.cased);
            out.extend(spec.demonyms);
            out.extend(spec.links.into_iter().map(|l| l.name));
        }
        out
    });

    #[rustfmt::skip]
    const FILLER: &[&str] = &[
        "the", "of", "said", "and", "troops", "in", "north", "south", "new", "us", "US", "a",
        " ", ", ", ". ", "-", "’s ", "\n", "Korea", "korea", "Sélestat", "ＵＳ", "u.s.", "2024",
    ];

    fn tagged_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            2 => (0..SURFACES.len()).prop_map(|i| SURFACES[i].clone()),
            3 => prop::sample::select(FILLER).prop_map(str::to_string),
        ];
        prop::collection::vec(piece, 0..16).prop_map(|pieces| pieces.join(" "))
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 300,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn tagging_finds_what_the_substring_search_finds(
            title in tagged_text(),
            content in tagged_text(),
        ) {
            let fields = [
                NormText::new(title.as_str()),
                NormText::default(),
                NormText::new(content.as_str()),
            ];
            prop_assert_eq!(BUILTIN.tag(&fields), reference_tag(&BUILTIN, &fields));
            let g = gazetteer(SMALL);
            prop_assert_eq!(g.tag(&fields), reference_tag(&g, &fields));
        }
    }

    #[test]
    fn a_cased_form_longer_than_its_folded_words_does_not_panic() {
        // "\u{301}" is a word (a combining mark) that folds to nothing.
        let g = gazetteer(
            "[[entity]]\nid = \"x\"\nname = \"Xland\"\nkind = \"country\"\ncased = [\"XL \u{301}\"]\n",
        );
        // Its second word has no token to compare with: no match, no panic.
        assert!(tag_names(&g, "in XL").is_empty());
        assert!(tag_names(&g, "in XL \u{301}").is_empty());
    }
}
