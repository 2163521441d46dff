//! Stories: items from different outlets about the same event, grouped.
//!
//! When forty outlets report the same event within hours, an analyst wants one
//! alert "reported by 40 sources", not forty. Each item gets a *signature*: the
//! distinctive words of its title and the start of its summary (folded, stop
//! words dropped) plus the entities it mentions. An item joins the recent
//! story whose signature it overlaps most, if the overlap is large enough
//! (shared terms ≥ [`MIN_SHARED`] and overlap coefficient ≥ [`MIN_OVERLAP`]);
//! otherwise it starts a new story. Entities make paraphrases meet ("Pyongyang
//! sends soldiers" / "North Korean troops deployed"); requiring several shared
//! terms keeps unrelated stories about the same country apart.
//!
//! The [`StoryIndex`] is an in-memory inverted index over the stories of the
//! window (default 48 h), rebuilt from the state at start-up; candidates are
//! found through the index, so the cost per item depends on how many recent
//! stories share its terms, not on the size of the window.

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

use crate::document::{Document, Field};
use crate::entities::Gazetteer;

/// Terms two signatures must share to be the same story.
pub const MIN_SHARED: usize = 4;
/// Shared terms divided by the size of the smaller signature.
pub const MIN_OVERLAP: f64 = 0.45;
/// Summary words taken into a signature (titles are taken whole).
const SUMMARY_WORDS: usize = 40;
/// A term carried by more recent stories than this is too common to say which
/// story an item belongs to; it is left out of the comparison.
const MAX_POSTINGS: usize = 300;

const STOP_WORDS: &[&str] = &[
    "the",
    "and",
    "for",
    "with",
    "that",
    "this",
    "from",
    "have",
    "has",
    "had",
    "was",
    "were",
    "are",
    "its",
    "his",
    "her",
    "their",
    "they",
    "them",
    "will",
    "would",
    "could",
    "should",
    "said",
    "says",
    "say",
    "after",
    "before",
    "over",
    "into",
    "about",
    "than",
    "then",
    "been",
    "being",
    "also",
    "more",
    "most",
    "some",
    "such",
    "not",
    "but",
    "who",
    "what",
    "when",
    "where",
    "which",
    "while",
    "there",
    "here",
    "our",
    "out",
    "new",
    "one",
    "two",
    "all",
    "any",
    "can",
    "may",
    "did",
    "does",
    "how",
    "why",
    "per",
    "via",
    "amid",
    "against",
    "under",
    "between",
    "during",
    "other",
    "only",
    "just",
    "very",
    "year",
    "years",
    "week",
    "day",
    "days",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "today",
    "yesterday",
    "told",
    "according",
    "officials",
    "official",
    "people",
    "report",
    "reports",
    "news",
    "live",
    "update",
    "updates",
];

/// The terms that identify what an item is about.
pub fn signature(document: &Document, gazetteer: &Gazetteer) -> Vec<String> {
    let mut terms: HashSet<String> = HashSet::new();
    let mut take = |field: Field, limit: usize| {
        let text = document.field(field);
        for i in 0..text.tokens.len().min(limit) {
            let word = text.folded_token(i);
            if word.len() >= 3
                && !STOP_WORDS.contains(&word)
                && !word.chars().all(|c| c.is_ascii_digit())
            {
                terms.insert(word.to_string());
            }
        }
    };
    take(Field::Title, usize::MAX);
    take(Field::Summary, SUMMARY_WORDS);
    if document.field(Field::Summary).tokens.is_empty() {
        take(Field::Content, SUMMARY_WORDS);
    }
    for mention in &document.mentions {
        if mention.field != Field::Content || document.field(Field::Summary).tokens.is_empty() {
            terms.insert(format!("@{}", gazetteer.entity(mention.entity).id));
        }
    }
    let mut terms: Vec<String> = terms.into_iter().collect();
    terms.sort();
    terms
}

/// A story's id: a short hash of the first item's signature and time.
fn story_id(terms: &[String], first_seen: i64) -> String {
    let mut hash = Sha256::new();
    for t in terms {
        hash.update(t.as_bytes());
        hash.update([0]);
    }
    hash.update(first_seen.to_le_bytes());
    hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Debug, Clone)]
struct Entry {
    id: String,
    terms: Vec<String>,
    last_seen: i64,
}

/// Recent stories and an inverted index over their terms.
#[derive(Debug, Default)]
pub struct StoryIndex {
    window_secs: i64,
    entries: Vec<Option<Entry>>,
    by_id: HashMap<String, usize>,
    postings: HashMap<String, Vec<usize>>,
    live: usize,
    /// No sweep for expired stories before this time (unix seconds).
    next_sweep: i64,
    /// Whether the stories of the state have been restored.
    restored: bool,
    /// (rule, story) → when an alert was last claimed, in milliseconds.
    claims: HashMap<(String, String), i64>,
}

/// Where an item went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub story: String,
    /// True when the item started the story.
    pub new: bool,
}

impl StoryIndex {
    /// An empty index keeping stories for `window_secs` after their last item.
    pub fn new(window_secs: i64) -> StoryIndex {
        StoryIndex {
            window_secs,
            ..StoryIndex::default()
        }
    }

    /// Number of stories in the window.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Claims the right to alert on `story` for `rule` unless another poll
    /// claimed it within `cooldown_ms`. Feeds are polled concurrently; this
    /// makes the cooldown hold across them before their alerts reach the state.
    pub fn claim(&mut self, rule: &str, story: &str, now_ms: i64, cooldown_ms: i64) -> bool {
        if self.claims.len() > 100_000 {
            let horizon = now_ms - self.window_secs.saturating_mul(1000);
            self.claims.retain(|_, t| *t >= horizon);
        }
        let key = (rule.to_string(), story.to_string());
        match self.claims.get(&key) {
            Some(&t) if now_ms - t < cooldown_ms => false,
            _ => {
                self.claims.insert(key, now_ms);
                true
            }
        }
    }

    /// Gives back a claim whose alert could not be recorded.
    pub fn release(&mut self, rule: &str, story: &str) {
        self.claims.remove(&(rule.to_string(), story.to_string()));
    }

    /// Restores the stories of the state once, on first use; `load` returns
    /// (id, terms, last seen) for the stories seen since a given time.
    pub fn restore_once<E>(
        &mut self,
        now: i64,
        load: impl FnOnce(i64) -> Result<Vec<(String, Vec<String>, i64)>, E>,
    ) -> Result<(), E> {
        if self.restored {
            return Ok(());
        }
        for (id, terms, last_seen) in load(now - self.window_secs)? {
            self.restore(id, terms, last_seen);
        }
        self.restored = true;
        Ok(())
    }

    /// Adds a story known from the state (start-up).
    pub fn restore(&mut self, id: String, terms: Vec<String>, last_seen: i64) {
        if self.by_id.contains_key(&id) {
            return;
        }
        self.insert(Entry {
            id,
            terms,
            last_seen,
        });
    }

    fn insert(&mut self, entry: Entry) -> usize {
        let slot = self.entries.len();
        for term in &entry.terms {
            self.postings.entry(term.clone()).or_default().push(slot);
        }
        self.by_id.insert(entry.id.clone(), slot);
        self.entries.push(Some(entry));
        self.live += 1;
        slot
    }

    /// The story an item with `terms` belongs to at time `now` (unix seconds),
    /// creating one if none is close enough.
    pub fn assign(&mut self, terms: &[String], now: i64) -> Assignment {
        self.expire(now);
        let cutoff = now - self.window_secs;
        let mut shared: HashMap<usize, usize> = HashMap::new();
        for term in terms {
            let Some(slots) = self.postings.get(term) else {
                continue;
            };
            if slots.len() > MAX_POSTINGS {
                continue;
            }
            for &slot in slots {
                *shared.entry(slot).or_default() += 1;
            }
        }
        let best = shared
            .into_iter()
            .filter_map(|(slot, n)| {
                let entry = self.entries[slot].as_ref()?;
                if entry.last_seen < cutoff || n < MIN_SHARED {
                    return None;
                }
                let overlap = n as f64 / terms.len().min(entry.terms.len()).max(1) as f64;
                (overlap >= MIN_OVERLAP).then_some((slot, overlap, n))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1).then(a.2.cmp(&b.2)).then(b.0.cmp(&a.0)));
        match best {
            Some((slot, _, _)) => {
                let entry = self.entries[slot]
                    .as_mut()
                    .expect("candidates come from live entries");
                entry.last_seen = entry.last_seen.max(now);
                Assignment {
                    story: entry.id.clone(),
                    new: false,
                }
            }
            None => {
                let id = story_id(terms, now);
                if let Some(&slot) = self.by_id.get(&id) {
                    // The same item seen again in the same second: same story.
                    if let Some(entry) = self.entries[slot].as_mut() {
                        entry.last_seen = now;
                    }
                    return Assignment {
                        story: id,
                        new: false,
                    };
                }
                self.insert(Entry {
                    id: id.clone(),
                    terms: terms.to_vec(),
                    last_seen: now,
                });
                Assignment {
                    story: id,
                    new: true,
                }
            }
        }
    }

    /// Drops stories idle for longer than the window, once enough have aged
    /// to make rebuilding the postings worth it.
    fn expire(&mut self, now: i64) {
        let cutoff = now - self.window_secs;
        // Counting stale stories is a scan: do it at most once a minute.
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + 60;
        let stale = self
            .entries
            .iter()
            .flatten()
            .filter(|e| e.last_seen < cutoff)
            .count();
        if stale < 1024 || stale * 4 < self.live {
            return;
        }
        let old = std::mem::take(&mut self.entries);
        self.postings.clear();
        self.by_id.clear();
        self.live = 0;
        for entry in old.into_iter().flatten() {
            if entry.last_seen >= cutoff {
                self.insert(entry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(words: &str) -> Vec<String> {
        let mut t: Vec<String> = words.split_whitespace().map(str::to_string).collect();
        t.sort();
        t
    }

    #[test]
    fn close_signatures_join_and_distant_ones_do_not() {
        let mut index = StoryIndex::new(48 * 3600);
        let a = index.assign(
            &terms("@kp @ru @ua soldiers kursk sent thousands fight"),
            1000,
        );
        assert!(a.new);
        let b = index.assign(
            &terms("@kp @ru troops kursk thousands deployed region"),
            1100,
        );
        assert_eq!(
            b,
            Assignment {
                story: a.story.clone(),
                new: false
            }
        );
        let c = index.assign(
            &terms("@ru central bank raises interest rates inflation"),
            1200,
        );
        assert!(c.new);
        assert_ne!(c.story, a.story);
        assert_eq!(index.len(), 2);
    }

    #[test]
    fn stories_expire_after_the_window() {
        let mut index = StoryIndex::new(100);
        let a = index.assign(&terms("@kp @ru soldiers kursk sent thousands"), 0);
        let b = index.assign(&terms("@kp @ru soldiers kursk sent thousands"), 500);
        assert_ne!(
            a.story, b.story,
            "an idle story is not joined after the window"
        );
    }
}
