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
//! window (default 48 h), rebuilt from the state when the first new items
//! arrive; candidates are found through the index, so the cost per item
//! depends on how many recent stories share its terms, not on the size of
//! the window. A story costs about 50 bytes plus 4 per signature term.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

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

/// The number a 16-digit lowercase hex id (every id [`story_id`] makes)
/// stands for, so that it can be kept in 8 bytes and written back unchanged.
fn hex_id(id: &str) -> Option<u64> {
    let digits = id.as_bytes();
    if digits.len() != 16
        || !digits
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    u64::from_str_radix(id, 16).ok()
}

/// A hasher for keys that are already hashes (or uniformly spread ids).
#[derive(Debug, Default, Clone, Copy)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; this keeps any other key correct, if slow.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A map keyed by a hash or an id number.
type KeyMap<V> = HashMap<u64, V, BuildHasherDefault<PassThrough>>;

/// A story in the window: 24 bytes. Its terms live only in the postings.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The id's number ([`hex_id`]), or for another id the hash of its text,
    /// which is then kept in [`StoryIndex::names`].
    id: u64,
    last_seen: i64,
    /// Size of the story's signature.
    terms: u32,
    named: bool,
}

/// Postings added between two merges into the packed lists. Small enough
/// that its per-term overhead does not matter; large enough that merging
/// (a pass over every posting) is rare.
const RECENT_POSTINGS: usize = 1 << 16;

/// The inverted index: for each term (by hash), the slots of the stories
/// whose signature carries it.
///
/// Most postings sit packed in one array, the runs of all terms one after
/// another in key order (4 bytes a posting, 12 a term: a window holds
/// hundreds of thousands of rare terms, and a `Vec` per term would cost more
/// than its postings). New postings go to `recent` and are merged in
/// batches, in place. Terms carried by so many stories that a bit per story
/// takes less room than a list are kept as bitmaps (`dense`); such a term is
/// always over [`MAX_POSTINGS`], so it is never read to find candidates, only
/// counted, and kept so that it can become a list again when stories expire.
#[derive(Debug, Default)]
struct Postings {
    /// Term keys, ascending.
    keys: Vec<u64>,
    /// End of each term's run in `slots` (a run starts where the previous ends).
    ends: Vec<u32>,
    slots: Vec<u32>,
    /// For each value of the top `dir_bits` bits of a key, the first index
    /// in `keys` with that prefix or a larger one: a lookup scans a few keys.
    dir: Vec<u32>,
    dir_bits: u32,
    recent: KeyMap<Vec<u32>>,
    recent_len: usize,
    dense: KeyMap<Dense>,
}

/// A term's postings as one bit per slot.
#[derive(Debug, Default)]
struct Dense {
    len: u32,
    bits: Vec<u64>,
}

impl Dense {
    fn insert(&mut self, slot: u32) {
        let word = slot as usize / 64;
        if self.bits.len() <= word {
            self.bits.resize(word + 1, 0);
        }
        self.bits[word] |= 1 << (slot % 64);
        self.len += 1;
    }

    fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.bits.iter().enumerate().flat_map(|(w, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros();
                rest &= rest - 1;
                Some(w as u32 * 64 + bit)
            })
        })
    }
}

/// Where a term's postings are.
enum Found<'a> {
    Lists(&'a [u32], &'a [u32]),
    Dense(&'a Dense),
}

impl Postings {
    fn push(&mut self, key: u64, slot: u32) {
        if let Some(dense) = self.dense.get_mut(&key) {
            dense.insert(slot);
            return;
        }
        self.recent.entry(key).or_default().push(slot);
        self.recent_len += 1;
    }

    fn get(&self, key: u64) -> Found<'_> {
        if let Some(dense) = self.dense.get(&key) {
            return Found::Dense(dense);
        }
        let recent = self.recent.get(&key).map_or(&[][..], Vec::as_slice);
        Found::Lists(self.packed(key), recent)
    }

    fn packed(&self, key: u64) -> &[u32] {
        if self.keys.is_empty() {
            return &[];
        }
        let bucket = (key >> (64 - self.dir_bits)) as usize;
        let (from, to) = (self.dir[bucket] as usize, self.dir[bucket + 1] as usize);
        match self.keys[from..to].iter().position(|&k| k == key) {
            Some(i) => self.run(from + i),
            None => &[],
        }
    }

    fn start(&self, term: usize) -> usize {
        if term == 0 {
            0
        } else {
            self.ends[term - 1] as usize
        }
    }

    fn run(&self, term: usize) -> &[u32] {
        &self.slots[self.start(term)..self.ends[term] as usize]
    }

    /// Moves the recent postings into the packed lists, in place: the arrays
    /// grow once and every run moves right, filled from the end.
    fn merge(&mut self, slot_count: usize) {
        let mut recent: Vec<(u64, Vec<u32>)> =
            std::mem::take(&mut self.recent).into_iter().collect();
        self.recent_len = 0;
        recent.sort_unstable_by_key(|(key, _)| *key);
        let old_terms = self.keys.len();
        let added_terms = recent
            .iter()
            .filter(|(key, _)| self.keys.binary_search(key).is_err())
            .count();
        let added_slots: usize = recent.iter().map(|(_, list)| list.len()).sum();
        let terms = old_terms + added_terms;
        self.keys.resize(terms, 0);
        self.ends.resize(terms, 0);
        self.slots.resize(self.slots.len() + added_slots, 0);
        let (mut old, mut new, mut write, mut end) =
            (old_terms, recent.len(), terms, self.slots.len());
        while write > 0 {
            write -= 1;
            let old_key = old.checked_sub(1).map(|i| self.keys[i]);
            let new_key = new.checked_sub(1).map(|i| recent[i].0);
            let take_old = old_key.is_some_and(|o| new_key.is_none_or(|n| o >= n));
            let take_new = new_key.is_some_and(|n| old_key.is_none_or(|o| n >= o));
            let key = if take_old { old_key } else { new_key }.expect("a term remains to place");
            // Read the old run before its place in `ends` may be overwritten.
            let old_run = take_old.then(|| {
                old -= 1;
                (self.start(old), self.ends[old] as usize)
            });
            self.keys[write] = key;
            self.ends[write] = end as u32;
            if take_new {
                new -= 1;
                let list = &recent[new].1;
                end -= list.len();
                self.slots[end..end + list.len()].copy_from_slice(list);
            }
            if let Some((from, to)) = old_run {
                end -= to - from;
                self.slots.copy_within(from..to, end);
            }
        }
        debug_assert_eq!(end, 0);
        self.make_dense(slot_count);
        self.index_keys();
    }

    /// Turns the runs of terms so common that a bitmap over `slot_count`
    /// slots is smaller into bitmaps.
    fn make_dense(&mut self, slot_count: usize) {
        let worth = |len: usize| len > MAX_POSTINGS && len * 32 >= slot_count;
        if !(0..self.keys.len()).any(|t| worth(self.run(t).len())) {
            return;
        }
        let (mut write, mut end) = (0, 0);
        for term in 0..self.keys.len() {
            let (from, to) = (self.start(term), self.ends[term] as usize);
            if worth(to - from) {
                let mut dense = Dense::default();
                for &slot in &self.slots[from..to] {
                    dense.insert(slot);
                }
                self.dense.insert(self.keys[term], dense);
                continue;
            }
            self.slots.copy_within(from..to, end);
            end += to - from;
            self.keys[write] = self.keys[term];
            self.ends[write] = end as u32;
            write += 1;
        }
        self.keys.truncate(write);
        self.ends.truncate(write);
        self.slots.truncate(end);
        self.shrink();
    }

    fn shrink(&mut self) {
        self.keys.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.slots.shrink_to_fit();
    }

    /// Rebuilds the directory over `keys`: about four keys a bucket.
    fn index_keys(&mut self) {
        self.dir_bits = (self.keys.len() / 4).max(1).ilog2().clamp(1, 24) + 1;
        let buckets = 1usize << self.dir_bits;
        self.dir.clear();
        self.dir.reserve_exact(buckets + 1);
        let mut term = 0;
        for bucket in 0..=buckets {
            while term < self.keys.len()
                && ((self.keys[term] >> (64 - self.dir_bits)) as usize) < bucket
            {
                term += 1;
            }
            self.dir.push(term as u32);
        }
    }

    /// Renumbers every posting through `map` (old slot → new slot, or
    /// `u32::MAX` for a story that left the window), dropping the gone ones.
    fn renumber(&mut self, map: &[u32], slot_count: usize) {
        let (mut write, mut end) = (0, 0);
        for term in 0..self.keys.len() {
            let (from, to) = (self.start(term), self.ends[term] as usize);
            let run_start = end;
            for i in from..to {
                let slot = map[self.slots[i] as usize];
                if slot != u32::MAX {
                    self.slots[end] = slot;
                    end += 1;
                }
            }
            if end > run_start {
                self.keys[write] = self.keys[term];
                self.ends[write] = end as u32;
                write += 1;
            }
        }
        self.keys.truncate(write);
        self.ends.truncate(write);
        self.slots.truncate(end);
        self.shrink();
        self.recent.retain(|_, list| {
            list.retain_mut(|slot| {
                *slot = map[*slot as usize];
                *slot != u32::MAX
            });
            !list.is_empty()
        });
        self.recent_len = self.recent.values().map(Vec::len).sum();
        for (key, dense) in std::mem::take(&mut self.dense) {
            let mut renumbered = Dense::default();
            for slot in dense.slots() {
                if map[slot as usize] != u32::MAX {
                    renumbered.insert(map[slot as usize]);
                }
            }
            if renumbered.len as usize > MAX_POSTINGS {
                self.dense.insert(key, renumbered);
            } else if renumbered.len > 0 {
                let list: Vec<u32> = renumbered.slots().collect();
                self.recent_len += list.len();
                self.recent.insert(key, list);
            }
        }
        self.merge(slot_count);
    }
}

/// Recent stories and an inverted index over their terms.
///
/// Memory matters here: a busy window holds hundreds of thousands of
/// stories. A story costs its 24-byte `Entry`, its id in `by_id`, and 4
/// bytes per signature term in the postings; terms are kept as 64-bit hashes
/// (keyed per process, so no feed can aim for a collision; with a million
/// terms the chance of any collision is about 10⁻⁷, and one would only make
/// two words count as one).
#[derive(Debug, Default)]
pub struct StoryIndex {
    window_secs: i64,
    entries: Vec<Entry>,
    /// Entry id → slot.
    by_id: KeyMap<u32>,
    /// The text of ids that are not 16 hex digits, by their hash.
    names: KeyMap<Box<str>>,
    postings: Postings,
    hasher: RandomState,
    /// Per slot, the terms shared with the item being assigned; all zero
    /// between calls (`touched` lists the slots to reset).
    shared: Vec<u32>,
    touched: Vec<u32>,
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
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
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

    /// Restores the stories of the state once, on first use. `load` is given
    /// the start of the window and a function to call with each story seen
    /// since: its id, its signature terms separated by spaces, and when it
    /// was last seen. Stories stream in: the state is never held in memory
    /// as strings.
    pub fn restore_once<E>(
        &mut self,
        now: i64,
        load: impl FnOnce(i64, &mut dyn FnMut(&str, &str, i64)) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.restored {
            return Ok(());
        }
        load(now - self.window_secs, &mut |id, terms, last_seen| {
            self.restore_terms(id, terms.split(' '), last_seen);
        })?;
        self.restored = true;
        Ok(())
    }

    /// Adds a story known from the state (start-up).
    pub fn restore(&mut self, id: String, terms: Vec<String>, last_seen: i64) {
        self.restore_terms(&id, terms.iter().map(String::as_str), last_seen);
    }

    fn restore_terms<'t>(
        &mut self,
        id: &str,
        terms: impl Iterator<Item = &'t str>,
        last_seen: i64,
    ) {
        if self.find(id).is_some() {
            return;
        }
        let (key, named) = match hex_id(id) {
            Some(number) => (number, false),
            None => (self.hasher.hash_one(id), true),
        };
        if named {
            self.names.insert(key, id.into());
        }
        let slot = self.push_entry(key, named, last_seen);
        let mut count = 0;
        for term in terms {
            self.postings.push(self.hasher.hash_one(term), slot);
            count += 1;
        }
        self.finish_entry(slot, count);
    }

    /// The slot of the story with this id.
    fn find(&self, id: &str) -> Option<u32> {
        let (key, named) = match hex_id(id) {
            Some(number) => (number, false),
            None => (self.hasher.hash_one(id), true),
        };
        let slot = *self.by_id.get(&key)?;
        let entry = &self.entries[slot as usize];
        let same =
            entry.named == named && (!named || self.names.get(&key).is_some_and(|n| **n == *id));
        same.then_some(slot)
    }

    fn push_entry(&mut self, id: u64, named: bool, last_seen: i64) -> u32 {
        let slot = u32::try_from(self.entries.len()).expect("fewer than 2³² stories in a window");
        self.entries.push(Entry {
            id,
            last_seen,
            terms: 0,
            named,
        });
        self.by_id.insert(id, slot);
        slot
    }

    fn finish_entry(&mut self, slot: u32, terms: usize) {
        self.entries[slot as usize].terms = u32::try_from(terms).unwrap_or(u32::MAX);
        if self.postings.recent_len > RECENT_POSTINGS {
            self.postings.merge(self.entries.len());
        }
    }

    fn id_text(&self, entry: &Entry) -> String {
        match entry.named {
            true => self
                .names
                .get(&entry.id)
                .map_or_else(String::new, |n| n.to_string()),
            false => format!("{:016x}", entry.id),
        }
    }

    /// The story an item with `terms` belongs to at time `now` (unix seconds),
    /// creating one if none is close enough.
    pub fn assign(&mut self, terms: &[String], now: i64) -> Assignment {
        self.expire(now);
        let cutoff = now - self.window_secs;
        self.shared.resize(self.entries.len(), 0);
        let mut keys = Vec::with_capacity(terms.len());
        for term in terms {
            let key = self.hasher.hash_one(term.as_str());
            keys.push(key);
            let count = |shared: &mut [u32], touched: &mut Vec<u32>, slot: u32| {
                let n = &mut shared[slot as usize];
                if *n == 0 {
                    touched.push(slot);
                }
                *n += 1;
            };
            match self.postings.get(key) {
                Found::Lists(packed, recent) => {
                    if packed.len() + recent.len() > MAX_POSTINGS {
                        continue;
                    }
                    for &slot in packed.iter().chain(recent) {
                        count(&mut self.shared, &mut self.touched, slot);
                    }
                }
                Found::Dense(dense) => {
                    if dense.len as usize > MAX_POSTINGS {
                        continue;
                    }
                    for slot in dense.slots() {
                        count(&mut self.shared, &mut self.touched, slot);
                    }
                }
            }
        }
        let mut best: Option<(u32, f64, u32)> = None;
        for &slot in &self.touched {
            let n = std::mem::take(&mut self.shared[slot as usize]);
            let entry = &self.entries[slot as usize];
            if entry.last_seen < cutoff || (n as usize) < MIN_SHARED {
                continue;
            }
            let smaller = terms.len().min(entry.terms as usize).max(1);
            let overlap = f64::from(n) / smaller as f64;
            if overlap < MIN_OVERLAP {
                continue;
            }
            let better = best.is_none_or(|(b_slot, b_overlap, b_n)| {
                overlap
                    .total_cmp(&b_overlap)
                    .then(n.cmp(&b_n))
                    .then(b_slot.cmp(&slot))
                    .is_gt()
            });
            if better {
                best = Some((slot, overlap, n));
            }
        }
        self.touched.clear();
        if let Some((slot, _, _)) = best {
            let entry = &mut self.entries[slot as usize];
            entry.last_seen = entry.last_seen.max(now);
            let entry = *entry;
            return Assignment {
                story: self.id_text(&entry),
                new: false,
            };
        }
        let id = story_id(terms, now);
        if let Some(slot) = self.find(&id) {
            // The same item seen again in the same second: same story.
            self.entries[slot as usize].last_seen = now;
            return Assignment {
                story: id,
                new: false,
            };
        }
        let number = hex_id(&id).expect("story_id makes 16 hex digits");
        let slot = self.push_entry(number, false, now);
        for key in keys {
            self.postings.push(key, slot);
        }
        self.finish_entry(slot, terms.len());
        Assignment {
            story: id,
            new: true,
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
        let stale = self.entries.iter().filter(|e| e.last_seen < cutoff).count();
        if stale < 1024 || stale * 4 < self.entries.len() {
            return;
        }
        let mut map = vec![u32::MAX; self.entries.len()];
        let mut kept = 0;
        for (slot, entry) in self.entries.iter().enumerate() {
            if entry.last_seen >= cutoff {
                map[slot] = kept;
                kept += 1;
            } else if entry.named {
                self.names.remove(&entry.id);
            }
        }
        self.entries.retain(|e| e.last_seen >= cutoff);
        self.entries.shrink_to_fit();
        self.by_id.clear();
        for (slot, entry) in self.entries.iter().enumerate() {
            self.by_id.insert(entry.id, slot as u32);
        }
        self.by_id.shrink_to_fit();
        self.postings.renumber(&map, self.entries.len());
        self.shared.clear();
        self.shared.shrink_to_fit();
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

    /// The index as first written (a `String`-keyed map of `Vec` postings
    /// and a `HashMap` of counts per item): the behaviour to keep.
    #[derive(Default)]
    struct Reference {
        window_secs: i64,
        entries: Vec<Option<(String, Vec<String>, i64)>>,
        by_id: HashMap<String, usize>,
        postings: HashMap<String, Vec<usize>>,
        next_sweep: i64,
    }

    impl Reference {
        fn insert(&mut self, id: String, terms: Vec<String>, last_seen: i64) {
            let slot = self.entries.len();
            for term in &terms {
                self.postings.entry(term.clone()).or_default().push(slot);
            }
            self.by_id.insert(id.clone(), slot);
            self.entries.push(Some((id, terms, last_seen)));
        }

        fn assign(&mut self, terms: &[String], now: i64) -> Assignment {
            let cutoff = now - self.window_secs;
            if now >= self.next_sweep {
                self.next_sweep = now + 60;
                let live = self.entries.len();
                let stale = self
                    .entries
                    .iter()
                    .flatten()
                    .filter(|e| e.2 < cutoff)
                    .count();
                if stale >= 1024 && stale * 4 >= live {
                    let old = std::mem::take(&mut self.entries);
                    self.postings.clear();
                    self.by_id.clear();
                    for (id, terms, last_seen) in old.into_iter().flatten() {
                        if last_seen >= cutoff {
                            self.insert(id, terms, last_seen);
                        }
                    }
                }
            }
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
                    if entry.2 < cutoff || n < MIN_SHARED {
                        return None;
                    }
                    let overlap = n as f64 / terms.len().min(entry.1.len()).max(1) as f64;
                    (overlap >= MIN_OVERLAP).then_some((slot, overlap, n))
                })
                .max_by(|a, b| a.1.total_cmp(&b.1).then(a.2.cmp(&b.2)).then(b.0.cmp(&a.0)));
            if let Some((slot, _, _)) = best {
                let entry = self.entries[slot].as_mut().unwrap();
                entry.2 = entry.2.max(now);
                return Assignment {
                    story: entry.0.clone(),
                    new: false,
                };
            }
            let id = story_id(terms, now);
            if let Some(&slot) = self.by_id.get(&id) {
                self.entries[slot].as_mut().unwrap().2 = now;
                return Assignment {
                    story: id,
                    new: false,
                };
            }
            self.insert(id.clone(), terms.to_vec(), now);
            Assignment {
                story: id,
                new: true,
            }
        }
    }

    /// Long enough to merge postings many times, turn common terms into
    /// bitmaps, and sweep expired stories; every assignment must be the one
    /// the reference makes.
    #[test]
    fn assignments_match_the_reference_through_merges_and_sweeps() {
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let window = 4000;
        let mut index = StoryIndex::new(window);
        let mut reference = Reference {
            window_secs: window,
            ..Reference::default()
        };
        // Stories restored from the state first, one with an id that is not hex.
        for i in 0..50u64 {
            let id = if i == 0 {
                "restored-story".to_string()
            } else {
                format!("{:016x}", i * 7919)
            };
            let t: Vec<String> = (0..6).map(|j| format!("r{}", (i + j) % 60)).collect();
            index.restore(id.clone(), t.clone(), 0);
            reference.insert(id, t, 0);
        }
        let mut earlier: Vec<Vec<String>> = Vec::new();
        let mut new_stories = 0;
        for step in 0..12_000i64 {
            let now = step / 2;
            let terms: Vec<String> = if !earlier.is_empty() && next() % 3 == 0 {
                let base = &earlier[(next() % earlier.len() as u64) as usize];
                base.iter().filter(|_| next() % 4 != 0).cloned().collect()
            } else {
                let mut t: Vec<String> = (0..(4 + next() % 20))
                    .map(|_| {
                        let u = (next() % 1_000_000) as f64 / 1_000_000.0;
                        format!("w{}", 3000f64.powf(u) as u64)
                    })
                    .collect();
                t.sort();
                t.dedup();
                t
            };
            if next() % 50 == 0 {
                // Merges at other moments than the batch size gives.
                index.postings.merge(index.entries.len());
            }
            let got = index.assign(&terms, now);
            assert_eq!(got, reference.assign(&terms, now), "step {step}");
            new_stories += usize::from(got.new);
            if earlier.len() < 500 {
                earlier.push(terms);
            } else {
                let i = (next() % 500) as usize;
                earlier[i] = terms;
            }
        }
        assert_eq!(index.len(), reference.entries.len());
        assert!(new_stories > 5_000, "{new_stories}");
        assert!(
            !index.postings.dense.is_empty(),
            "some terms became bitmaps"
        );
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
