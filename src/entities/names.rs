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

/// Words that introduce a person's name (folded).
const TITLES: &[&str] = &[
    "president",
    "minister",
    "chancellor",
    "premier",
    "secretary",
    "senator",
    "sen",
    "governor",
    "mayor",
    "general",
    "gen",
    "admiral",
    "adm",
    "colonel",
    "col",
    "commander",
    "ambassador",
    "envoy",
    "king",
    "queen",
    "prince",
    "princess",
    "pope",
    "sheikh",
    "emir",
    "ayatollah",
    "judge",
    "prosecutor",
    "spokesman",
    "spokeswoman",
    "spokesperson",
    "chairman",
    "chairwoman",
    "mr",
    "mrs",
    "ms",
    "dr",
    "representative",
    "rep",
    "lawmaker",
    "mp",
    "mep",
    "leader",
    "chief",
    "director",
    "ceo",
];

/// Verbs of attribution that follow a name.
const SAID: &[&str] = &[
    "said",
    "says",
    "told",
    "added",
    "wrote",
    "warned",
    "announced",
    "insisted",
    "stated",
];

/// Capitalised words that are not names.
const NOT_NAMES: &[&str] = &[
    "the",
    "a",
    "an",
    "and",
    "or",
    "but",
    "in",
    "on",
    "at",
    "of",
    "for",
    "to",
    "with",
    "by",
    "from",
    "this",
    "that",
    "these",
    "those",
    "he",
    "she",
    "they",
    "we",
    "it",
    "his",
    "her",
    "their",
    "our",
    "its",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "minister",
    "president",
    "officials",
    "official",
    "government",
    "ministry",
    "state",
    "foreign",
    "defence",
    "defense",
    "prime",
    "deputy",
    "vice",
    "former",
    "acting",
    "interior",
    "finance",
    "economy",
    "general",
    "secretary",
    "news",
    "police",
    "army",
    "court",
    "house",
    "white",
    "party",
    "republic",
    "kingdom",
    "union",
    "council",
    "committee",
];

/// Name particles allowed in lower case between capitalised parts.
const PARTICLES: &[&str] = &[
    "von", "van", "der", "de", "da", "di", "del", "la", "le", "bin", "ibn", "al", "el",
];

fn capitalised(text: &NormText, i: usize) -> bool {
    let t = text.tokens[i];
    text.original[t.start as usize..t.end as usize]
        .chars()
        .next()
        .is_some_and(char::is_uppercase)
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
    // Trailing particles are not part of the name.
    while end > start && PARTICLES.contains(&text.folded_token(end - 1)) {
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

#[cfg(test)]
mod tests {
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
    fn ordinary_capitals_are_not_names() {
        assert!(names("The European Council met on Monday in Brussels.").is_empty());
        assert!(names("President said nothing. Foreign Minister of France").is_empty());
        assert!(names("Officials said the talks failed").is_empty());
    }
}
