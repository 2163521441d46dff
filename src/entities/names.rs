//! Person names the gazetteer does not know, guessed from how news writes them.
//!
//! News introduces people with a title ("President Ana Costa", "Defence
//! Minister Kim Yong-Hyun") or attributes a quote to them ("Maria Lopes
//! said"). Those two patterns find new names with few false positives; a bare
//! capitalised sequence ("European Council", "Monday Morning") is not enough
//! on its own. Guesses never replace gazetteer mentions: a span already tagged
//! is left alone.

use crate::document::Field;
use crate::entities::Mention;
use crate::text::NormText;

/// A person name found by the heuristic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuessedName {
    pub name: String,
    pub field: Field,
    /// Token range, end exclusive.
    pub start: u32,
    pub end: u32,
}

/// Words that introduce a person's name (folded; like the other word lists,
/// sorted by length, then bytes, for [`is_listed`]).
const TITLES: &[&str] = &[
    "dr",
    "mp",
    "mr",
    "ms",
    "adm",
    "ceo",
    "col",
    "gen",
    "mep",
    "mrs",
    "rep",
    "sen",
    "emir",
    "king",
    "pope",
    "chief",
    "envoy",
    "judge",
    "mayor",
    "queen",
    "leader",
    "prince",
    "sheikh",
    "admiral",
    "colonel",
    "general",
    "premier",
    "senator",
    "chairman",
    "director",
    "governor",
    "lawmaker",
    "minister",
    "princess",
    "ayatollah",
    "commander",
    "president",
    "secretary",
    "spokesman",
    "ambassador",
    "chairwoman",
    "chancellor",
    "prosecutor",
    "spokeswoman",
    "spokesperson",
    "representative",
];

/// Verbs of attribution that follow a name.
const SAID: &[&str] = &[
    "said",
    "says",
    "told",
    "added",
    "wrote",
    "stated",
    "warned",
    "insisted",
    "announced",
];

/// Capitalised words that are not names.
const NOT_NAMES: &[&str] = &[
    "a",
    "an",
    "at",
    "by",
    "he",
    "in",
    "it",
    "of",
    "on",
    "or",
    "to",
    "we",
    "and",
    "but",
    "for",
    "her",
    "his",
    "its",
    "may",
    "our",
    "she",
    "the",
    "army",
    "from",
    "july",
    "june",
    "news",
    "that",
    "they",
    "this",
    "vice",
    "with",
    "april",
    "court",
    "house",
    "march",
    "party",
    "prime",
    "state",
    "their",
    "these",
    "those",
    "union",
    "white",
    "acting",
    "august",
    "deputy",
    "former",
    "friday",
    "monday",
    "police",
    "sunday",
    "council",
    "defence",
    "defense",
    "economy",
    "finance",
    "foreign",
    "general",
    "january",
    "kingdom",
    "october",
    "tuesday",
    "december",
    "february",
    "interior",
    "minister",
    "ministry",
    "november",
    "official",
    "republic",
    "saturday",
    "thursday",
    "committee",
    "officials",
    "president",
    "secretary",
    "september",
    "wednesday",
    "government",
];

/// Name particles allowed in lower case between capitalised parts.
const PARTICLES: &[&str] = &[
    "al", "da", "de", "di", "el", "la", "le", "bin", "del", "der", "ibn", "van", "von",
];

/// Whether `word` is in `list`, one of the word lists above. They are
/// sorted by length first: most steps of the search compare two lengths,
/// not two strings.
fn is_listed(list: &[&str], word: &str) -> bool {
    list.binary_search_by(|listed| (listed.len(), *listed).cmp(&(word.len(), word)))
        .is_ok()
}

fn capitalised(text: &NormText, i: usize) -> bool {
    let start = text.tokens[i].start as usize;
    match text.original.as_bytes().get(start) {
        Some(b) if b.is_ascii() => b.is_ascii_uppercase(),
        _ => text.original[start..]
            .chars()
            .next()
            .is_some_and(char::is_uppercase),
    }
}

/// Whether tokens `i` and `i + 1` are joined by a single space or hyphen.
fn joined(text: &NormText, i: usize) -> bool {
    let gap = &text.original[text.tokens[i].end as usize..text.tokens[i + 1].start as usize];
    matches!(gap, " " | "-" | "\u{2010}" | "\u{2011}")
}

/// The name starting at token `start`: 2–4 capitalised tokens (particles
/// allowed inside), or `None`.
fn name_at(text: &NormText, start: usize) -> Option<usize> {
    // A name starts with a capital (a particle may not open it): most tokens
    // are ruled out here, before any folded form is looked up.
    if !capitalised(text, start) {
        return None;
    }
    let n = text.tokens.len();
    let mut end = start;
    let mut capitals = 0;
    while end < n && end - start < 5 {
        let word = text.folded_token(end);
        let is_cap = capitalised(text, end)
            && !is_listed(NOT_NAMES, word)
            && word.chars().all(char::is_alphabetic);
        let is_particle = capitals > 0 && is_listed(PARTICLES, word);
        if !(is_cap || is_particle) {
            break;
        }
        capitals += usize::from(is_cap);
        if end + 1 < n && joined(text, end) {
            end += 1;
        } else {
            end += 1;
            break;
        }
    }
    // Trailing particles are not part of the name.
    while end > start && is_listed(PARTICLES, text.folded_token(end - 1)) {
        end -= 1;
    }
    (capitals >= 2 && end - start <= 4).then_some(end)
}

/// Guesses person names in `text`, skipping spans covered by `known` mentions.
pub fn guess_names(text: &NormText, field: Field, known: &[Mention]) -> Vec<GuessedName> {
    let covered = |i: usize| {
        known
            .iter()
            .any(|m| m.field == field && (m.start as usize..m.end as usize).contains(&i))
    };
    let mut out: Vec<GuessedName> = Vec::new();
    let n = text.tokens.len();
    let mut i = 0;
    while i < n {
        // A capitalised run first (cheap, and rare), then its context.
        let candidate = name_at(text, i).filter(|&end| {
            let after_title =
                i > 0 && is_listed(TITLES, text.folded_token(i - 1)) && joined(text, i - 1);
            let before_said = end < n && is_listed(SAID, text.folded_token(end));
            (after_title || before_said) && !(i..end).any(covered)
        });
        match candidate {
            Some(end) => {
                let range = text.original_range(i, end - 1);
                out.push(GuessedName {
                    name: text.original[range].to_string(),
                    field,
                    start: i as u32,
                    end: end as u32,
                });
                i = end;
            }
            None => i += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn names(text: &str) -> Vec<String> {
        guess_names(&NormText::new(text), Field::Content, &[])
            .into_iter()
            .map(|g| g.name)
            .collect()
    }

    #[test]
    fn titles_and_attribution_introduce_names() {
        assert_eq!(
            names("Defence Minister Kim Yong-Hyun said"),
            ["Kim Yong-Hyun"]
        );
        assert_eq!(
            names("talks with President Ana Maria Costa on Monday"),
            ["Ana Maria Costa"]
        );
        assert_eq!(
            names("\"We will act,\" Maria Lopes told reporters."),
            ["Maria Lopes"]
        );
        assert_eq!(
            names("Commission President Ursula von der Leyen"),
            ["Ursula von der Leyen"]
        );
    }

    #[test]
    fn word_lists_are_sorted_for_binary_search() {
        for list in [TITLES, SAID, NOT_NAMES, PARTICLES] {
            assert!(
                list.windows(2)
                    .all(|w| (w[0].len(), w[0]) < (w[1].len(), w[1])),
                "{list:?}"
            );
        }
    }

    #[test]
    fn ordinary_capitals_are_not_names() {
        assert!(names("The European Council met on Monday in Brussels.").is_empty());
        assert!(names("President said nothing. Foreign Minister of France").is_empty());
        assert!(names("Officials said the talks failed").is_empty());
    }

    /// Name guessing as first written: word lists searched in order, the
    /// first character decoded and asked `is_uppercase`.
    fn reference_guess_names(text: &NormText, field: Field, known: &[Mention]) -> Vec<GuessedName> {
        let capitalised = |i: usize| {
            let t = text.tokens[i];
            text.original[t.start as usize..t.end as usize]
                .chars()
                .next()
                .is_some_and(char::is_uppercase)
        };
        let name_at = |start: usize| {
            if !capitalised(start) {
                return None;
            }
            let n = text.tokens.len();
            let mut end = start;
            let mut capitals = 0;
            while end < n && end - start < 5 {
                let word = text.folded_token(end);
                let is_cap = capitalised(end)
                    && !NOT_NAMES.contains(&word)
                    && word.chars().all(char::is_alphabetic);
                let is_particle = capitals > 0 && PARTICLES.contains(&word);
                if !(is_cap || is_particle) {
                    break;
                }
                capitals += usize::from(is_cap);
                if end + 1 < n && joined(text, end) {
                    end += 1;
                } else {
                    end += 1;
                    break;
                }
            }
            while end > start && PARTICLES.contains(&text.folded_token(end - 1)) {
                end -= 1;
            }
            (capitals >= 2 && end - start <= 4).then_some(end)
        };
        let covered = |i: usize| {
            known
                .iter()
                .any(|m| m.field == field && (m.start as usize..m.end as usize).contains(&i))
        };
        let mut out = Vec::new();
        let n = text.tokens.len();
        let mut i = 0;
        while i < n {
            let candidate = name_at(i).filter(|&end| {
                let after_title =
                    i > 0 && TITLES.contains(&text.folded_token(i - 1)) && joined(text, i - 1);
                let before_said = end < n && SAID.contains(&text.folded_token(end));
                (after_title || before_said) && !(i..end).any(covered)
            });
            match candidate {
                Some(end) => {
                    let range = text.original_range(i, end - 1);
                    out.push(GuessedName {
                        name: text.original[range].to_string(),
                        field,
                        start: i as u32,
                        end: end as u32,
                    });
                    i = end;
                }
                None => i += 1,
            }
        }
        out
    }

    #[rustfmt::skip]
    const WORDS: &[&str] = &[
        "President", "president", "Minister", "Defence", "Gen.", "Dr", "Ana", "Maria", "Costa",
        "Kim", "Yong", "Hyun", "von", "der", "Leyen", "de", "al", "said", "told", "says", "The",
        "Monday", "European", "Council", "Élodie", "Łukasz", "ÖZIL", "İlker", "Ｏｌｅｎａ",
        "McDonald", "O'Neil", "x2", "NATO", "and", "in", "officials",
    ];

    fn sentence() -> impl Strategy<Value = String> {
        let piece = (
            prop::sample::select(WORDS),
            prop::sample::select(&[" ", " ", " ", "-", ", ", ". ", "  ", "\u{2010}", " “"][..]),
        )
            .prop_map(|(word, gap)| format!("{word}{gap}"));
        prop::collection::vec(piece, 0..20).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 2_000,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn guesses_match_the_original_rules(text in sentence()) {
            let norm = NormText::new(text.as_str());
            prop_assert_eq!(
                guess_names(&norm, Field::Title, &[]),
                reference_guess_names(&norm, Field::Title, &[])
            );
        }
    }
}
