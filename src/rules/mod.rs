//! Rules: compile the user's queries once, then evaluate documents fast.
//!
//! [`compile`] parses every query ([`syntax`]), resolves entity names and kinds
//! against the [`Gazetteer`], and builds one [`RuleSet`]: every word, prefix and
//! phrase of every rule goes into one term index that a single pass over the
//! folded tokens of a document consults (a hash lookup per token, behind a
//! bit-filter that rejects most tokens without hashing them), and each rule
//! becomes a small boolean program over *atoms* (terms, regexes, entities,
//! kinds), laid out flat in one array shared by all rules. Each top-level
//! alternative of a rule (a *clause*) is indexed by up to eight
//! *requirements*, sets of atoms at least one of which must be present, in
//! the fields the rule asks for, for the clause to hold; a rule is evaluated
//! only when a document meets all requirements of one of its clauses, so the
//! cost stays nearly flat in the number of rules. Atom truth is computed once
//! per document, and regex atoms run lazily, only when a rule that is still
//! undecided needs them.
//!
//! [`RuleSet::evaluate`] returns a [`RuleMatch`] per firing rule with the hits
//! that explain it (term, field, byte range, snippet). This module keeps no
//! state between documents and performs no I/O.

pub mod interpret;
pub mod syntax;
mod words;

use std::collections::HashMap;
use std::ops::Range;

use serde::Serialize;

use crate::document::{Document, Field, FieldMask};
use crate::entities::{GUESSED_BASE, Gazetteer, PERSON_KIND, did_you_mean};
use crate::text::{NormText, snippet};
pub use syntax::{Expr, QueryWarning, SyntaxError, lint, parse};

/// Characters of context on each side of a hit in a snippet.
pub const SNIPPET_CONTEXT: usize = 50;
/// Hits reported per rule match (explanations stay short).
pub const MAX_HITS: usize = 10;
/// Requirements indexed per clause (bits of a byte).
const MAX_REQUIREMENTS: usize = 8;
/// Top-level alternatives of a rule indexed apart; a rule with more is
/// indexed as one clause.
const MAX_CLAUSES: usize = 16;
/// The cost of an anchor present in most items (a kind: some country).
const COMMON: u32 = 40;

/// Hash maps on the hot path: short keys, no untrusted input to defend against
/// (keys come from the user's own rules).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// A rule that failed to compile.
#[derive(Debug, Clone)]
pub struct RuleError {
    pub rule: String,
    pub error: SyntaxError,
}

/// Where an atom occurred: a field and a token range, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub field: u8,
    pub start: u32,
    pub end: u32,
    /// Index of the atom (compiled) or a leaf counter (interpreter).
    pub atom: u32,
    /// The entity behind an entity or kind hit, `u32::MAX` otherwise.
    pub entity: u32,
}

/// Token distance between two occurrences in the same field: 0 when they
/// overlap, 1 when adjacent.
pub fn distance(a: &Pos, b: &Pos) -> u32 {
    if a.end <= b.start {
        b.start - a.end + 1
    } else if b.end <= a.start {
        a.start - b.end + 1
    } else {
        0
    }
}

/// Both sides' positions that lie within `n` tokens of a position on the other side.
pub fn near_positions(left: &[Pos], right: &[Pos], n: u32) -> Vec<Pos> {
    // Sorted by (field, start), each side is searched in a window around the
    // other's occurrences: O((L + R) log R) rather than L × R, so long items
    // need no cap on positions.
    let mut right_sorted: Vec<Pos> = right.to_vec();
    right_sorted.sort_unstable_by_key(|q| (q.field, q.start));
    let longest = right_sorted
        .iter()
        .map(|q| q.end - q.start)
        .max()
        .unwrap_or(0);
    let mut right_used = vec![false; right_sorted.len()];
    let mut out = Vec::new();
    for p in left {
        // Candidates start no earlier than p.start - n - longest, no later than p.end + n.
        let low = (p.field, p.start.saturating_sub(n.saturating_add(longest)));
        let high = (p.field, p.end.saturating_add(n));
        let from = right_sorted.partition_point(|q| (q.field, q.start) < low);
        let to = right_sorted.partition_point(|q| (q.field, q.start) <= high);
        let mut used = false;
        for (q, flag) in right_sorted[from..to].iter().zip(&mut right_used[from..to]) {
            if q.field == p.field && distance(p, q) <= n {
                used = true;
                *flag = true;
            }
        }
        if used {
            out.push(*p);
        }
    }
    out.extend(
        right_sorted
            .iter()
            .zip(right_used)
            .filter(|(_, u)| *u)
            .map(|(q, _)| *q),
    );
    out
}

/// Whether some position of `left` lies within `n` tokens of one of `right`
/// (which this sorts): the truth of a NEAR, without collecting its positions.
fn near_any(left: &[Pos], right: &mut [Pos], n: u32) -> bool {
    // Most sides occur a few times: comparing every pair is cheaper than sorting.
    if left.len() * right.len() <= 64 {
        return left.iter().any(|p| {
            right
                .iter()
                .any(|q| q.field == p.field && distance(p, q) <= n)
        });
    }
    right.sort_unstable_by_key(|q| (q.field, q.start));
    let longest = right.iter().map(|q| q.end - q.start).max().unwrap_or(0);
    left.iter().any(|p| {
        let low = (p.field, p.start.saturating_sub(n.saturating_add(longest)));
        let high = (p.field, p.end.saturating_add(n));
        let from = right.partition_point(|q| (q.field, q.start) < low);
        let to = right.partition_point(|q| (q.field, q.start) <= high);
        right[from..to]
            .iter()
            .any(|q| q.field == p.field && distance(p, q) <= n)
    })
}

/// One term of a rule that explains why it fired.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub term: String,
    pub field: Field,
    #[serde(skip)]
    pub range: Range<usize>,
    pub snippet: String,
}

/// A rule that fired on a document, with the positions that made it fire;
/// [`RuleSet::explain`] turns them into hits.
#[derive(Debug, Clone)]
pub struct Fired {
    /// Index of the rule in the order given to [`compile`].
    pub rule: usize,
    positions: Vec<Pos>,
}

/// A rule that fired on a document, explained.
#[derive(Debug, Clone)]
pub struct RuleMatch {
    /// Index of the rule in the order given to [`compile`].
    pub rule: usize,
    pub hits: Vec<Hit>,
}

#[derive(Debug, Clone)]
enum AtomKind {
    Term { term: u32 },
    Regex { regex: u32 },
    Entity { entity: u32 },
    Kind { kind: u32, min: u32 },
}

#[derive(Debug, Clone)]
struct Atom {
    kind: AtomKind,
    fields: FieldMask,
    label: String,
}

#[derive(Debug, Clone)]
enum Node {
    /// A term atom, with what evaluating it needs inline.
    Term {
        atom: u32,
        term: u32,
        fields: FieldMask,
    },
    Atom(u32),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Near(Box<Node>, Box<Node>, u32),
}

/// One node of a rule program laid out flat: a node is followed by its
/// children's subtrees, and knows its own subtree's length, so evaluation
/// walks one contiguous slice and skips what it need not look at. All rules'
/// programs share one array; a candidate's program is a few cache lines.
#[derive(Debug, Clone, Copy)]
struct Op {
    kind: OpKind,
    /// Ops in this node's subtree, itself included.
    size: u32,
}

#[derive(Debug, Clone, Copy)]
enum OpKind {
    Term {
        atom: u32,
        term: u32,
        fields: FieldMask,
    },
    Atom(u32),
    And(u32),
    Or(u32),
    Not,
    Near(u32),
}

/// Appends the flat program of `node` to `out`.
fn flatten(node: &Node, out: &mut Vec<Op>) {
    let at = out.len();
    let (kind, children): (OpKind, &[Node]) = match node {
        &Node::Term { atom, term, fields } => (OpKind::Term { atom, term, fields }, &[]),
        Node::Atom(a) => (OpKind::Atom(*a), &[]),
        Node::And(children) => (OpKind::And(children.len() as u32), children),
        Node::Or(children) => (OpKind::Or(children.len() as u32), children),
        Node::Not(child) => (OpKind::Not, std::slice::from_ref(&**child)),
        Node::Near(a, b, n) => {
            out.push(Op {
                kind: OpKind::Near(*n),
                size: 0,
            });
            flatten(a, out);
            flatten(b, out);
            out[at].size = (out.len() - at) as u32;
            return;
        }
    };
    out.push(Op { kind, size: 0 });
    for child in children {
        flatten(child, out);
    }
    out[at].size = (out.len() - at) as u32;
}

impl Node {
    /// A rough cost of evaluating the node: NEARs compare positions, other
    /// nodes look up cached truths.
    fn weight(&self) -> u32 {
        match self {
            Node::Term { .. } | Node::Atom(_) => 1,
            Node::Not(child) => child.weight(),
            Node::And(children) | Node::Or(children) => children.iter().map(Node::weight).sum(),
            Node::Near(a, b, _) => 16 + a.weight() + b.weight(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Anchor {
    Term(u32),
    Entity(u32),
    Kind(u32),
}

impl Anchor {
    /// A rough guess at how often the anchor is present in a news item, used
    /// to index each rule on its rarest requirements: phrases are rarer than
    /// words, words rarer than prefixes, and a kind (some country) is present
    /// in most items.
    fn cost(self, terms: &TermIndex) -> u32 {
        match self {
            Anchor::Term(t) => {
                let term = &terms.terms[t as usize];
                match (term.words.len(), term.prefix) {
                    (1, false) => 2,
                    (1, true) if term.words[0].len() < 4 => 16,
                    (1, true) => 4,
                    _ => 1,
                }
            }
            Anchor::Entity(_) => 6,
            Anchor::Kind(_) => COMMON,
        }
    }
}

/// A clause indexed by an anchor: the anchor meets the requirement `bit` of
/// `clause` when it occurs in one of `fields`. A clause is one top-level
/// alternative of a rule (a rule without OR at the top has one): a rule is
/// evaluated once all requirements of one of its clauses are met.
#[derive(Debug, Clone, Copy)]
struct Posting {
    clause: u32,
    bit: u8,
    fields: FieldMask,
}

/// A posting that meets nothing (its fields never match).
const NO_POSTING: Posting = Posting {
    clause: 0,
    bit: 0,
    fields: 0,
};

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub id: String,
    pub expr: Expr,
    program: Node,
}

/// All rules of a configuration, compiled together.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<CompiledRule>,
    atoms: Vec<Atom>,
    terms: TermIndex,
    regexes: Vec<regex::Regex>,
    /// For each term, the clauses it meets a requirement of when it occurs
    /// in one of the posting's fields: `term_postings[term_starts[t]..term_starts[t + 1]]`.
    term_starts: Vec<u32>,
    term_postings: Vec<Posting>,
    /// The same for entities and kinds.
    by_anchor: FastMap<Anchor, Vec<Posting>>,
    /// Every rule's flat program, one after the other; `starts[rule]` is where
    /// the rule's begins.
    ops: Vec<Op>,
    starts: Vec<u32>,
    /// Per clause, the bits of all its requirements.
    required: Vec<u8>,
    /// Per clause, its rule.
    clause_rule: Vec<u32>,
    /// Rules without requirements, evaluated on every document.
    always: Vec<u32>,
    entity_names: Vec<String>,
    entity_kinds: Vec<u32>,
}

/// A word, a prefix (`word*`) or a phrase of some rule, folded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Term {
    words: Box<[Box<str>]>,
    /// The last word is a prefix.
    prefix: bool,
}

/// 2^16 bits: a filter that rejects most tokens before any hashing.
#[derive(Debug, Clone)]
struct BitFilter(Box<[u64; 1024]>);

impl BitFilter {
    fn new() -> BitFilter {
        BitFilter(Box::new([0; 1024]))
    }

    fn slot(key: u32) -> (usize, u64) {
        let h = key.wrapping_mul(0x9e37_79b1) >> 16;
        ((h >> 6) as usize, 1 << (h & 63))
    }

    fn insert(&mut self, key: u32) {
        let (word, bit) = BitFilter::slot(key);
        self.0[word] |= bit;
    }

    fn may_contain(&self, key: u32) -> bool {
        let (word, bit) = BitFilter::slot(key);
        self.0[word] & bit != 0
    }
}

/// The filter key of a word that starts a term: its length and first,
/// second and last bytes.
fn word_key(word: &[u8]) -> u32 {
    let (Some(&first), Some(&last)) = (word.first(), word.last()) else {
        return 0;
    };
    let second = word.get(1).copied().unwrap_or(0);
    u32::from(first)
        | u32::from(second) << 8
        | u32::from(last) << 16
        | (word.len().min(255) as u32) << 24
}

/// The filter key of a three-byte prefix (a word key has a length byte on top).
fn prefix3_key(a: u8, b: u8, c: u8) -> u32 {
    u32::from_le_bytes([a, b, c, 0])
}

/// The filter key of a four-byte prefix (its bytes in little-endian order),
/// scrambled so that it rarely equals the key of a word.
fn prefix4_key(bytes: u32) -> u32 {
    bytes.rotate_left(13) ^ 0x5bd1_e995
}

/// Every term of a rule set, indexed for one pass over a document's tokens.
#[derive(Debug, Clone)]
struct TermIndex {
    terms: Vec<Term>,
    /// Terms by their first word, when that word is matched whole (single
    /// words, and phrases marked with [`PHRASE`]).
    by_first_word: words::WordTable,
    /// One filter for first words and both kinds of prefixes (their keys
    /// differ): a token touches one small array, which stays in cache.
    filter: BitFilter,
    /// Single-word prefixes of exactly three bytes, by those bytes: every
    /// token that starts with the key matches them all.
    by_prefix3: words::WordTable,
    /// Single-word prefixes of four bytes or more, by their first four
    /// bytes; the rest is compared per token with `prefix_tails`.
    by_prefix4: words::WordTable,
    /// Per term (a prefix of four bytes or more): its length and its bytes
    /// 4 to 12.
    prefix_tails: Vec<(u32, u64)>,
    /// Single-word prefixes shorter than three bytes, tried on every token.
    short_prefixes: Vec<u32>,
}

impl TermIndex {
    fn new(terms: Vec<Term>) -> TermIndex {
        let mut by_first_word: FastMap<&[u8], Vec<u32>> = FastMap::default();
        let mut by_prefix3: FastMap<&[u8], Vec<u32>> = FastMap::default();
        let mut by_prefix4: FastMap<&[u8], Vec<u32>> = FastMap::default();
        let mut index = TermIndex {
            terms: Vec::new(),
            by_first_word: words::WordTable::new(&[]),
            filter: BitFilter::new(),
            by_prefix3: words::WordTable::new(&[]),
            by_prefix4: words::WordTable::new(&[]),
            prefix_tails: vec![(0, 0); terms.len()],
            short_prefixes: Vec::new(),
        };
        for (id, term) in terms.iter().enumerate() {
            let id = id as u32;
            let first = &term.words[0];
            if term.prefix && term.words.len() == 1 {
                let bytes = first.as_bytes();
                match *bytes {
                    [a, b, c] => {
                        index.filter.insert(prefix3_key(a, b, c));
                        by_prefix3.entry(bytes).or_default().push(id);
                    }
                    [a, b, c, d, ..] => {
                        index
                            .filter
                            .insert(prefix4_key(u32::from_le_bytes([a, b, c, d])));
                        by_prefix4.entry(&bytes[..4]).or_default().push(id);
                        index.prefix_tails[id as usize] = (
                            bytes.len() as u32,
                            words::head(bytes.get(4..12).unwrap_or(&bytes[4..])),
                        );
                    }
                    _ => index.short_prefixes.push(id),
                }
            } else {
                index.filter.insert(word_key(first.as_bytes()));
                let phrase = if term.words.len() > 1 { PHRASE } else { 0 };
                by_first_word
                    .entry(first.as_bytes())
                    .or_default()
                    .push(id | phrase);
            }
        }
        let table = |map: FastMap<&[u8], Vec<u32>>| {
            let mut pairs: Vec<_> = map.into_iter().collect();
            pairs.sort_unstable();
            words::WordTable::new(&pairs)
        };
        index.by_first_word = table(by_first_word);
        index.by_prefix3 = table(by_prefix3);
        index.by_prefix4 = table(by_prefix4);
        index.terms = terms;
        index
    }

    /// Records every occurrence of every term in `doc`.
    fn scan(&self, doc: &Document, hits: &mut TermHits) {
        if self.terms.is_empty() {
            return;
        }
        let mut passed = std::mem::take(&mut hits.passed);
        for field in Field::ALL {
            let text = doc.field(field);
            let folded = text.folded.as_bytes();
            let n = text.tokens.len();
            if passed.len() < 3 * n {
                passed.resize(3 * n, 0);
            }
            // First the three filter probes of every token, each token's
            // index written to the list of each probe and kept where it
            // passes: most tokens fail all three, which pass is
            // unpredictable, and a guessed branch per token would cost more
            // than the lookups of the few that pass.
            let (words, rest) = passed.split_at_mut(n);
            let (threes, fours) = rest.split_at_mut(n);
            let (mut nw, mut n3, mut n4) = (0, 0, 0);
            for i in 0..n {
                let (start, end) = text.folded_bounds(i);
                let len = end - start;
                let last = folded.get(end.wrapping_sub(1)).copied().unwrap_or(0);
                let head = words::head_at(folded, start, len);
                let word = u32::from(last) << 16 | (len.min(255) as u32) << 24;
                let word = (len > 0) & self.filter.may_contain(word | (head & 0xffff) as u32);
                let three = (len >= 3) & self.filter.may_contain((head & 0xff_ffff) as u32);
                let four = (len >= 4) & self.filter.may_contain(prefix4_key(head as u32));
                words[nw] = i as u32;
                nw += usize::from(word);
                threes[n3] = i as u32;
                n3 += usize::from(three);
                fours[n4] = i as u32;
                n4 += usize::from(four);
            }
            if !self.short_prefixes.is_empty() {
                for i in 0..n {
                    let token = text.folded_token_bytes(i);
                    for &t in &self.short_prefixes {
                        if token.starts_with(self.terms[t as usize].words[0].as_bytes()) {
                            hits.record(t, field, i, 1);
                        }
                    }
                }
            }
            for &i in &words[..nw] {
                let i = i as usize;
                let (start, end) = text.folded_bounds(i);
                let token = &folded[start..end];
                let head = words::head_at(folded, start, token.len());
                let tail = words::tail_at(folded, start, token.len());
                // A miss is recorded on the sentinel: about one looked-up
                // token in five misses, unpredictably.
                let (found, values) = self.by_first_word.probe(token, head, tail);
                if values.first & PHRASE == 0 {
                    hits.record_if(found, values.first, field, i, 1);
                } else if found {
                    self.record_phrase(values.first, text, field, i, hits);
                }
                for &value in values.more {
                    if value & PHRASE == 0 {
                        hits.record(value, field, i, 1);
                    } else {
                        self.record_phrase(value, text, field, i, hits);
                    }
                }
            }
            for &i in &threes[..n3] {
                let i = i as usize;
                let (start, _) = text.folded_bounds(i);
                let head = words::head_at(folded, start, 3);
                if let Some(terms) = self.by_prefix3.get(&folded[start..start + 3], head, 0) {
                    for t in terms {
                        hits.record(t, field, i, 1);
                    }
                }
            }
            for &i in &fours[..n4] {
                let i = i as usize;
                let (start, end) = text.folded_bounds(i);
                let token = &folded[start..end];
                let head = words::head_at(folded, start, 4);
                if let Some(terms) = self.by_prefix4.get(&token[..4], head, 0) {
                    for t in terms {
                        let keep = self.prefix_continues(t, token, folded, start);
                        hits.record_if(keep, t, field, i, 1);
                    }
                }
            }
        }
        hits.passed = passed;
    }
}

impl TermIndex {
    /// Records phrase term `value` (marked with [`PHRASE`]) at token `i` of
    /// `text` if the words after its first follow.
    fn record_phrase(
        &self,
        value: u32,
        text: &NormText,
        field: Field,
        i: usize,
        hits: &mut TermHits,
    ) {
        let t = value & !PHRASE;
        let term = &self.terms[t as usize];
        if phrase_continues(text, i, term) {
            hits.record(t, field, i, term.words.len());
        }
    }

    /// Whether `token` (at `start` of `folded`), which starts with the first
    /// four bytes of prefix term `t`, starts with all of it.
    #[inline(always)]
    fn prefix_continues(&self, t: u32, token: &[u8], folded: &[u8], start: usize) -> bool {
        let (len, tail) = self.prefix_tails[t as usize];
        let len = len as usize;
        // Without a branch for the usual prefix of at most twelve bytes:
        // the bytes read past a shorter token are the space after it and
        // the next token, so the comparison fails there as it should.
        let same =
            (token.len() >= len) & (words::head_at(folded, start + 4, len.min(12) - 4) == tail);
        // Only the rare longer prefix is compared in full; the branch is on
        // its length, not on whether the token matched.
        let rest = len <= 12 || token.starts_with(self.terms[t as usize].words[0].as_bytes());
        same & rest
    }
}

/// Marks a term of a first-word table that is a phrase (the words after the
/// first are compared per occurrence).
const PHRASE: u32 = 1 << 31;

/// Whether the words after the first of a phrase follow token `i`.
fn phrase_continues(text: &NormText, i: usize, term: &Term) -> bool {
    let n = term.words.len();
    if i + n > text.tokens.len() {
        return false;
    }
    term.words[1..].iter().enumerate().all(|(k, word)| {
        let token = text.folded_token_bytes(i + 1 + k);
        if term.prefix && k + 2 == n {
            token.starts_with(word.as_bytes())
        } else {
            token == word.as_bytes()
        }
    })
}

/// The term occurrences of one document.
#[derive(Default)]
struct TermHits {
    /// Per term, 1 + the index in `hits` of its last occurrence (0: none)
    /// and the fields it occurs in (bits): one read per term. One more
    /// entry, the sentinel, takes the occurrences nobody asked for (see
    /// [`TermHits::record_if`]).
    state: Vec<(u32, FieldMask)>,
    /// Terms that occur, each once, in order of first occurrence: the first
    /// `present_len` entries (the vector is as long as `state`, so that a
    /// term is added without a branch).
    present: Vec<u32>,
    present_len: usize,
    /// Occurrences, each with 1 + the index of the previous occurrence of the
    /// same term (0: none).
    hits: Vec<(Pos, u32)>,
    /// Room for the token indices [`TermIndex::scan`] collects per field.
    passed: Vec<u32>,
}

impl TermHits {
    /// Forgets the last document and makes room for `terms` terms.
    fn reset(&mut self, terms: usize) {
        for &t in &self.present[..self.present_len] {
            self.state[t as usize] = (0, 0);
        }
        self.present_len = 0;
        self.hits.clear();
        if let Some(sentinel) = self.state.last_mut() {
            *sentinel = (0, 0);
        }
        if self.state.len() < terms + 1 {
            self.state.resize(terms + 1, (0, 0));
            self.present.resize(terms + 1, 0);
        }
    }

    /// The terms that occur, in order of first occurrence (without the sentinel).
    fn present(&self) -> &[u32] {
        &self.present[..self.present_len]
    }

    fn record(&mut self, term: u32, field: Field, start: usize, len: usize) {
        self.record_if(true, term, field, start, len);
    }

    /// Records an occurrence of `term` if `keep`, and otherwise one of the
    /// sentinel, which no rule reads and `present` never lists. Both take
    /// the same steps: whether a token matched is unpredictable, and a
    /// branch on it would be guessed wrong about as often as it is taken.
    #[inline(always)]
    fn record_if(&mut self, keep: bool, term: u32, field: Field, start: usize, len: usize) {
        let sentinel = self.state.len() - 1;
        let t = std::hint::select_unpredictable(keep, term as usize, sentinel);
        let (last, fields) = self.state[t];
        self.present[self.present_len] = t as u32;
        self.present_len += usize::from((last == 0) & (t != sentinel));
        self.hits.push((
            Pos {
                field: field as u8,
                start: start as u32,
                end: (start + len) as u32,
                atom: 0,
                entity: u32::MAX,
            },
            last,
        ));
        self.state[t] = (self.hits.len() as u32, fields | field.bit());
    }

    /// The fields `term` occurs in.
    fn fields(&self, term: u32) -> FieldMask {
        self.state[term as usize].1
    }

    /// Occurrences of `term` in `fields`, last first.
    fn positions(&self, term: u32, fields: FieldMask) -> impl Iterator<Item = Pos> + '_ {
        let mut next = self.state[term as usize].0;
        std::iter::from_fn(move || {
            let (pos, previous) = *self.hits.get(next.checked_sub(1)? as usize)?;
            next = previous;
            Some(pos)
        })
        .filter(move |p| fields & (1 << p.field) != 0)
    }
}

/// Compiles `(id, query)` pairs. Every broken rule is reported, not just the first.
pub fn compile<'a>(
    rules: impl IntoIterator<Item = (&'a str, &'a str)>,
    gazetteer: &Gazetteer,
) -> Result<RuleSet, Vec<RuleError>> {
    let mut builder = Builder {
        gazetteer,
        atoms: Vec::new(),
        atom_index: HashMap::new(),
        terms: Vec::new(),
        term_index: HashMap::new(),
        regexes: Vec::new(),
        regex_index: HashMap::new(),
    };
    let mut compiled = Vec::new();
    let mut errors = Vec::new();
    for (id, query) in rules {
        let result = parse(query).and_then(|expr| {
            let program = builder.node(&expr)?;
            Ok((expr, program))
        });
        match result {
            Ok((expr, program)) => compiled.push(CompiledRule {
                id: id.to_string(),
                expr,
                program,
            }),
            Err(error) => errors.push(RuleError {
                rule: id.to_string(),
                error,
            }),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let terms = TermIndex::new(builder.terms);
    let mut by_term: Vec<Vec<Posting>> = vec![Vec::new(); terms.terms.len()];
    let mut by_anchor: FastMap<Anchor, Vec<Posting>> = FastMap::default();
    let mut required = Vec::with_capacity(compiled.len());
    let mut clause_rule = Vec::with_capacity(compiled.len());
    let mut always = Vec::new();
    for (i, rule) in compiled.iter().enumerate() {
        let alternatives = alternatives(&rule.program);
        let clauses: Vec<_> = if alternatives.len() <= MAX_CLAUSES {
            alternatives
                .iter()
                .map(|a| rarest_requirements(a, &builder.atoms, &terms))
                .collect()
        } else {
            vec![rarest_requirements(&rule.program, &builder.atoms, &terms)]
        };
        if clauses.iter().any(Vec::is_empty) {
            always.push(i as u32);
            continue;
        }
        for groups in clauses {
            let clause = required.len() as u32;
            let mut bits = 0u8;
            for (g, group) in groups.iter().enumerate() {
                let bit = 1u8 << g;
                bits |= bit;
                for &(anchor, fields) in group {
                    let postings = match anchor {
                        Anchor::Term(t) => &mut by_term[t as usize],
                        _ => by_anchor.entry(anchor).or_default(),
                    };
                    postings.push(Posting {
                        clause,
                        bit,
                        fields,
                    });
                }
            }
            required.push(bits);
            clause_rule.push(i as u32);
        }
    }
    // One more clause, which nothing completes (it requires no bits, and a
    // posting always adds one): `RuleSet::gathered` points the postings of
    // anchors that occur in none of their fields at it, instead of branching
    // on them.
    required.push(0);
    clause_rule.push(u32::MAX);
    let mut term_starts = Vec::with_capacity(by_term.len() + 1);
    term_starts.push(0);
    for postings in &by_term {
        term_starts.push(term_starts.last().copied().unwrap_or(0) + postings.len() as u32);
    }
    let mut ops = Vec::new();
    let mut starts = Vec::with_capacity(compiled.len());
    for rule in &compiled {
        starts.push(ops.len() as u32);
        flatten(&rule.program, &mut ops);
    }
    Ok(RuleSet {
        ops,
        starts,
        rules: compiled,
        atoms: builder.atoms,
        terms,
        regexes: builder.regexes,
        term_starts,
        term_postings: {
            // Four spare postings at the end: `gather_terms` copies four from
            // where a term's postings start, whatever their number (even none).
            let mut flat: Vec<Posting> = by_term.into_iter().flatten().collect();
            flat.extend([NO_POSTING; 4]);
            flat
        },
        by_anchor,
        required,
        clause_rule,
        always,
        entity_names: gazetteer
            .entities()
            .iter()
            .map(|e| e.name.clone())
            .collect(),
        entity_kinds: gazetteer.entities().iter().map(|e| e.kind).collect(),
    })
}

struct Builder<'g> {
    gazetteer: &'g Gazetteer,
    atoms: Vec<Atom>,
    atom_index: HashMap<(String, FieldMask), u32>,
    terms: Vec<Term>,
    term_index: HashMap<Term, u32>,
    regexes: Vec<regex::Regex>,
    regex_index: HashMap<String, u32>,
}

impl Builder<'_> {
    fn node(&mut self, expr: &Expr) -> Result<Node, SyntaxError> {
        Ok(match expr {
            Expr::And(children) => {
                let mut children = children
                    .iter()
                    .map(|c| self.node(c))
                    .collect::<Result<Vec<_>, _>>()?;
                // Cheap conditions first: an item that fails one skips the
                // position comparisons of a NEAR.
                children.sort_by_key(Node::weight);
                Node::And(children)
            }
            Expr::Or(children) => Node::Or(
                children
                    .iter()
                    .map(|c| self.node(c))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Not(child) => Node::Not(Box::new(self.node(child)?)),
            Expr::Near(a, b, n) => Node::Near(Box::new(self.node(a)?), Box::new(self.node(b)?), *n),
            atom => {
                let id = self.atom(atom)?;
                match self.atoms[id as usize] {
                    Atom {
                        kind: AtomKind::Term { term },
                        fields,
                        ..
                    } => Node::Term {
                        atom: id,
                        term,
                        fields,
                    },
                    _ => Node::Atom(id),
                }
            }
        })
    }

    fn atom(&mut self, expr: &Expr) -> Result<u32, SyntaxError> {
        let (kind, fields) = match expr {
            Expr::Text {
                words,
                prefix,
                fields,
                ..
            } => {
                let key = Term {
                    words: words.iter().map(|w| w.as_str().into()).collect(),
                    prefix: *prefix,
                };
                let next = self.terms.len() as u32;
                let term = *self.term_index.entry(key.clone()).or_insert(next);
                if term == next {
                    self.terms.push(key);
                }
                (AtomKind::Term { term }, *fields)
            }
            Expr::Regex {
                pattern,
                fields,
                span,
            } => {
                let next = self.regexes.len() as u32;
                let regex = match self.regex_index.get(pattern) {
                    Some(&r) => r,
                    None => {
                        let compiled = regex::RegexBuilder::new(pattern)
                            .size_limit(1 << 20)
                            .build()
                            .map_err(|e| SyntaxError {
                                span: span.clone(),
                                message: format!(
                                    "invalid regex: {}",
                                    e.to_string().lines().last().unwrap_or("invalid").trim()
                                ),
                            })?;
                        self.regexes.push(compiled);
                        self.regex_index.insert(pattern.clone(), next);
                        next
                    }
                };
                (AtomKind::Regex { regex }, *fields)
            }
            Expr::Entity { name, fields, span } => {
                let Some(entity) = self.gazetteer.lookup(name) else {
                    let hint = did_you_mean(name, self.gazetteer.names())
                        .map(|s| format!(" — did you mean {s}?"))
                        .unwrap_or_default();
                    return Err(SyntaxError {
                        span: span.clone(),
                        message: format!("unknown entity \"{name}\"{hint}"),
                    });
                };
                (AtomKind::Entity { entity }, *fields)
            }
            Expr::Kind {
                kind,
                min,
                fields,
                span,
            } => {
                let Some(kind_id) = self.gazetteer.kind_id(kind) else {
                    let hint =
                        did_you_mean(kind, self.gazetteer.kinds().iter().map(String::as_str))
                            .map(|s| format!(" — did you mean {s}?"))
                            .unwrap_or_default();
                    return Err(SyntaxError {
                        span: span.clone(),
                        message: format!("unknown kind \"{kind}\"{hint}"),
                    });
                };
                (
                    AtomKind::Kind {
                        kind: kind_id,
                        min: *min,
                    },
                    *fields,
                )
            }
            Expr::And(_) | Expr::Or(_) | Expr::Not(_) | Expr::Near(..) => {
                unreachable!("node() handles operators before atom() is called")
            }
        };
        let label = expr.label();
        let next = self.atoms.len() as u32;
        let key = (format!("{kind:?}"), fields);
        let id = *self.atom_index.entry(key).or_insert(next);
        if id == next {
            self.atoms.push(Atom {
                kind,
                fields,
                label,
            });
        }
        Ok(id)
    }
}

/// Per-document working memory, kept per thread and reused: evaluating an
/// item allocates nothing in proportion to the number of rules.
#[derive(Default)]
struct Scratch {
    hits: TermHits,
    /// Per clause, the bits of the requirements met so far.
    met: Vec<u8>,
    met_touched: Vec<u32>,
    /// The postings of the terms, entities and kinds present in a document
    /// (see [`RuleSet::gather_terms`]).
    gathered: Vec<Posting>,
    /// Clauses whose requirements a document met.
    complete: Vec<u32>,
    /// Per rule, whether it is among the candidates.
    queued: Vec<bool>,
    /// Per atom other than terms: 0 not yet known, 1 false, 2 true.
    truth: Vec<u8>,
    truth_touched: Vec<u32>,
    /// Per entity or kind atom whose truth is known, its positions: a range
    /// of `known_positions`.
    known: Vec<(u32, u32)>,
    known_positions: Vec<Pos>,
    candidates: Vec<u32>,
    /// Spare position buffers for NEAR.
    pool: Vec<Vec<Pos>>,
}

impl Scratch {
    /// Forgets the last document (whatever rule set it was evaluated with)
    /// and makes room for `set`.
    fn reset(&mut self, set: &RuleSet) {
        self.hits.reset(set.terms.terms.len());
        for &r in &self.met_touched {
            self.met[r as usize] = 0;
        }
        self.met_touched.clear();
        if self.met.len() < set.required.len() {
            self.met.resize(set.required.len(), 0);
        }
        for &r in &self.candidates {
            self.queued[r as usize] = false;
        }
        if self.queued.len() < set.rules.len() {
            self.queued.resize(set.rules.len(), false);
        }
        for &a in &self.truth_touched {
            self.truth[a as usize] = 0;
        }
        self.truth_touched.clear();
        if self.truth.len() < set.atoms.len() {
            self.truth.resize(set.atoms.len(), 0);
            self.known.resize(set.atoms.len(), (0, 0));
        }
        self.known_positions.clear();
        self.candidates.clear();
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// The top-level alternatives of a rule: it can hold only if one of them does.
fn alternatives(node: &Node) -> Vec<&Node> {
    match node {
        Node::Or(children) => children.iter().flat_map(alternatives).collect(),
        _ => vec![node],
    }
}

/// An anchor and the fields it must occur in.
type Scoped = (Anchor, FieldMask);

/// Requirements of `node`: sets of anchors such that `node` can be true only
/// if each set has an anchor present, in its fields, in the document.
/// Regexes and negations require nothing.
fn requirements(node: &Node, atoms: &[Atom], terms: &TermIndex) -> Vec<Vec<Scoped>> {
    match node {
        Node::Term { term, fields, .. } => vec![vec![(Anchor::Term(*term), *fields)]],
        Node::Atom(a) => {
            let atom = &atoms[*a as usize];
            let anchor = match atom.kind {
                AtomKind::Term { term } => Anchor::Term(term),
                AtomKind::Entity { entity } => Anchor::Entity(entity),
                AtomKind::Kind { kind, .. } => Anchor::Kind(kind),
                AtomKind::Regex { .. } => return Vec::new(),
            };
            vec![vec![(anchor, atom.fields)]]
        }
        Node::Not(_) => Vec::new(),
        Node::And(children) => children
            .iter()
            .flat_map(|c| requirements(c, atoms, terms))
            .collect(),
        Node::Near(a, b, _) => {
            let mut all = requirements(a, atoms, terms);
            all.extend(requirements(b, atoms, terms));
            all
        }
        // One alternative must hold, so the union of one requirement of each
        // alternative is a requirement.
        Node::Or(children) => {
            let mut union = Vec::new();
            for c in children {
                let Some(cheapest) = requirements(c, atoms, terms)
                    .into_iter()
                    .min_by_key(|g| group_cost(g, terms))
                else {
                    return Vec::new();
                };
                union.extend(cheapest);
            }
            union.sort_unstable();
            union.dedup();
            vec![union]
        }
    }
}

fn group_cost(group: &[Scoped], terms: &TermIndex) -> u32 {
    group.iter().map(|(a, _)| a.cost(terms)).sum()
}

/// The requirements a rule is indexed by: the rarest few. A requirement that
/// most items meet (some country is mentioned) is left to evaluation unless
/// the rule has no other.
fn rarest_requirements(node: &Node, atoms: &[Atom], terms: &TermIndex) -> Vec<Vec<Scoped>> {
    let mut groups = requirements(node, atoms, terms);
    for g in &mut groups {
        g.sort_unstable();
        g.dedup();
    }
    groups.sort_by_cached_key(|g| (group_cost(g, terms), g.clone()));
    groups.dedup();
    let rare = groups
        .iter()
        .take_while(|g| group_cost(g, terms) < COMMON)
        .count()
        .max(1);
    groups.truncate(rare.min(MAX_REQUIREMENTS));
    groups
}

/// Per-document evaluation state.
struct Eval<'a> {
    set: &'a RuleSet,
    doc: &'a Document,
    scratch: &'a mut Scratch,
    regex_cache: HashMap<u32, Vec<Pos>>,
}

impl Eval<'_> {
    fn regex_positions(&mut self, regex: u32) -> &[Pos] {
        let set = self.set;
        let doc = self.doc;
        self.regex_cache
            .entry(regex)
            .or_insert_with(|| regex_hits(&set.regexes[regex as usize], doc, 0))
    }

    fn atom_positions(&mut self, atom_id: u32, out: &mut Vec<Pos>) {
        let atom = &self.set.atoms[atom_id as usize];
        let fields = atom.fields;
        let from = out.len();
        match atom.kind {
            AtomKind::Term { term } => out.extend(self.scratch.hits.positions(term, fields)),
            AtomKind::Regex { regex } => out.extend(
                self.regex_positions(regex)
                    .iter()
                    .filter(|p| fields & (1 << p.field) != 0),
            ),
            AtomKind::Entity { .. } | AtomKind::Kind { .. } => {
                self.atom_true(atom_id);
                let (start, end) = self.scratch.known[atom_id as usize];
                out.extend_from_slice(&self.scratch.known_positions[start as usize..end as usize]);
            }
        }
        for p in &mut out[from..] {
            p.atom = atom_id;
        }
    }

    fn atom_true(&mut self, atom_id: u32) -> bool {
        let atom = &self.set.atoms[atom_id as usize];
        if let AtomKind::Term { term } = atom.kind {
            return self.scratch.hits.fields(term) & atom.fields != 0;
        }
        match self.scratch.truth[atom_id as usize] {
            1 => return false,
            2 => return true,
            _ => {}
        }
        let truth = match atom.kind {
            // A regex match counts even where it covers no whole token.
            AtomKind::Regex { regex } => {
                regex_any(&self.set.regexes[regex as usize], self.doc, atom.fields)
            }
            AtomKind::Term { .. } => unreachable!("term truth is read from the hits"),
            AtomKind::Entity { entity } => self.know(atom_id, |doc, fields, out| {
                push_mentions(doc, fields, |e| e == entity, out)
            }),
            AtomKind::Kind { kind, min } => {
                let set = self.set;
                self.know(atom_id, |doc, fields, out| {
                    push_kind(doc, kind, min, fields, |e| set.entity_kind(e), out)
                })
            }
        };
        self.scratch.truth[atom_id as usize] = 1 + u8::from(truth);
        self.scratch.truth_touched.push(atom_id);
        truth
    }

    /// Keeps the positions of an entity or kind atom for the rest of the
    /// document (`find` appends them to the buffer it is given); whether it
    /// has any.
    fn know(
        &mut self,
        atom_id: u32,
        find: impl FnOnce(&Document, FieldMask, &mut Vec<Pos>),
    ) -> bool {
        let known = &mut self.scratch.known_positions;
        let start = known.len();
        find(self.doc, self.set.atoms[atom_id as usize].fields, known);
        for p in &mut known[start..] {
            p.atom = atom_id;
        }
        self.scratch.known[atom_id as usize] = (start as u32, known.len() as u32);
        known.len() > start
    }

    fn buffer(&mut self) -> Vec<Pos> {
        self.scratch.pool.pop().unwrap_or_default()
    }

    fn give_back(&mut self, mut buffer: Vec<Pos>) {
        buffer.clear();
        self.scratch.pool.push(buffer);
    }

    /// Whether the node at `at` of the program array is true.
    fn truth(&mut self, at: usize) -> bool {
        let ops = &self.set.ops;
        match ops[at].kind {
            OpKind::Term { term, fields, .. } => self.scratch.hits.fields(term) & fields != 0,
            OpKind::Atom(a) => self.atom_true(a),
            OpKind::And(n) => {
                let mut child = at + 1;
                for _ in 0..n {
                    if !self.truth(child) {
                        return false;
                    }
                    child += self.set.ops[child].size as usize;
                }
                true
            }
            OpKind::Or(n) => {
                let mut child = at + 1;
                for _ in 0..n {
                    if self.truth(child) {
                        return true;
                    }
                    child += self.set.ops[child].size as usize;
                }
                false
            }
            OpKind::Not => !self.truth(at + 1),
            // Both sides must be true before their positions are worth comparing.
            OpKind::Near(n) => {
                let (a, b) = (at + 1, at + 1 + ops[at + 1].size as usize);
                if !(self.truth(a) && self.truth(b)) {
                    return false;
                }
                let (mut left, mut right) = (self.buffer(), self.buffer());
                self.positions_into(a, &mut left);
                self.positions_into(b, &mut right);
                let near = near_any(&left, &mut right, n);
                self.give_back(left);
                self.give_back(right);
                near
            }
        }
    }

    /// Positions of the atoms that make the node at `at` true (empty when it
    /// is false).
    fn positions(&mut self, at: usize) -> Vec<Pos> {
        let mut out = Vec::new();
        self.positions_into(at, &mut out);
        out
    }

    /// Appends the positions of the atoms that make the node at `at` true to `out`.
    fn positions_into(&mut self, at: usize, out: &mut Vec<Pos>) {
        let ops = &self.set.ops;
        let children = |n: u32| {
            let mut child = at + 1;
            (0..n).map(move |_| {
                let this = child;
                child += ops[this].size as usize;
                this
            })
        };
        match ops[at].kind {
            OpKind::Term { atom, term, fields } => out.extend(
                self.scratch
                    .hits
                    .positions(term, fields)
                    .map(|p| Pos { atom, ..p }),
            ),
            OpKind::Atom(a) => self.atom_positions(a, out),
            OpKind::And(n) => {
                if self.truth(at) {
                    for child in children(n) {
                        self.positions_into(child, out);
                    }
                }
            }
            OpKind::Or(n) => {
                for child in children(n) {
                    self.positions_into(child, out);
                }
            }
            OpKind::Not => {}
            OpKind::Near(n) => {
                let (a, b) = (at + 1, at + 1 + ops[at + 1].size as usize);
                let (mut left, mut right) = (self.buffer(), self.buffer());
                self.positions_into(a, &mut left);
                if !left.is_empty() {
                    self.positions_into(b, &mut right);
                    out.extend(near_positions(&left, &right, n));
                }
                self.give_back(left);
                self.give_back(right);
            }
        }
    }
}

/// Positions of mentions in `fields` whose entity satisfies `keep`.
pub(crate) fn mention_positions(
    doc: &Document,
    fields: FieldMask,
    keep: impl Fn(u32) -> bool,
) -> Vec<Pos> {
    doc.mentions
        .iter()
        .filter(|m| fields & m.field.bit() != 0 && keep(m.entity))
        .map(|m| Pos {
            field: m.field as u8,
            start: m.start,
            end: m.end,
            atom: 0,
            entity: m.entity,
        })
        .collect()
}

/// Mentions of entities of `kind` in `fields` (guessed names count as
/// persons), or nothing when fewer than `min` distinct entities are mentioned.
pub(crate) fn kind_positions(
    doc: &Document,
    kind: u32,
    min: u32,
    fields: FieldMask,
    kind_of: impl Fn(u32) -> Option<u32>,
) -> Vec<Pos> {
    let mut found = mention_positions(doc, fields, |e| kind_of(e) == Some(kind));
    if kind == PERSON_KIND {
        found.extend(
            doc.guessed
                .iter()
                .filter(|g| fields & g.field.bit() != 0)
                .map(|g| Pos {
                    field: g.field as u8,
                    start: g.start,
                    end: g.end,
                    atom: 0,
                    entity: doc.guessed_id(g),
                }),
        );
    }
    if distinct_entities(&found) < min as usize {
        Vec::new()
    } else {
        found
    }
}

/// [`mention_positions`] appended to `out`, without allocating.
fn push_mentions(
    doc: &Document,
    fields: FieldMask,
    keep: impl Fn(u32) -> bool,
    out: &mut Vec<Pos>,
) {
    for m in &doc.mentions {
        if fields & m.field.bit() != 0 && keep(m.entity) {
            out.push(Pos {
                field: m.field as u8,
                start: m.start,
                end: m.end,
                atom: 0,
                entity: m.entity,
            });
        }
    }
}

/// [`kind_positions`] appended to `out`, without allocating.
fn push_kind(
    doc: &Document,
    kind: u32,
    min: u32,
    fields: FieldMask,
    kind_of: impl Fn(u32) -> Option<u32>,
    out: &mut Vec<Pos>,
) {
    let from = out.len();
    push_mentions(doc, fields, |e| kind_of(e) == Some(kind), out);
    if kind == PERSON_KIND {
        for g in &doc.guessed {
            if fields & g.field.bit() != 0 {
                out.push(Pos {
                    field: g.field as u8,
                    start: g.start,
                    end: g.end,
                    atom: 0,
                    entity: doc.guessed_id(g),
                });
            }
        }
    }
    if !at_least_distinct(&out[from..], min as usize) {
        out.truncate(from);
    }
}

/// Whether `positions` name at least `min` distinct entities. Thresholds
/// are small (`kind:country>=2`), so the entities seen are kept in a short
/// array and the scan stops once there are enough.
fn at_least_distinct(positions: &[Pos], min: usize) -> bool {
    const FEW: usize = 8;
    if min > FEW {
        return distinct_entities(positions) >= min;
    }
    let mut seen = [0u32; FEW];
    let mut n = 0;
    for p in positions {
        if n >= min {
            break;
        }
        if !seen[..n].contains(&p.entity) {
            seen[n] = p.entity;
            n += 1;
        }
    }
    n >= min
}

pub(crate) fn distinct_entities(positions: &[Pos]) -> usize {
    let mut seen: Vec<u32> = positions.iter().map(|p| p.entity).collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

/// Token positions covered by matches of `regex` in each field's folded text.
pub(crate) fn regex_hits(regex: &regex::Regex, doc: &Document, atom: u32) -> Vec<Pos> {
    let mut out = Vec::new();
    for field in Field::ALL {
        let text = doc.field(field);
        for m in regex.find_iter(&text.folded) {
            if let Some((start, end)) = tokens_covering(text, m.range()) {
                out.push(Pos {
                    field: field as u8,
                    start,
                    end,
                    atom,
                    entity: u32::MAX,
                });
            }
        }
    }
    out
}

/// Whether `regex` matches anywhere in the allowed fields.
pub(crate) fn regex_any(regex: &regex::Regex, doc: &Document, fields: FieldMask) -> bool {
    Field::ALL
        .into_iter()
        .any(|f| fields & f.bit() != 0 && regex.is_match(&doc.field(f).folded))
}

/// The token range (end exclusive) whose folded text overlaps `range`.
fn tokens_covering(text: &NormText, range: Range<usize>) -> Option<(u32, u32)> {
    let folded_end = |i: usize| {
        let start = text.tokens[i].folded_start as usize;
        start + text.folded[start..].find(' ').unwrap_or(0)
    };
    let first = text
        .tokens
        .partition_point(|t| (t.folded_start as usize) < range.start);
    // The token before may extend into the range.
    let first = match first.checked_sub(1) {
        Some(prev) if folded_end(prev) > range.start => prev,
        _ => first,
    };
    let last = text
        .tokens
        .partition_point(|t| (t.folded_start as usize) < range.end);
    (first < last).then_some((first as u32, last as u32))
}

impl RuleSet {
    /// An empty rule set (matches nothing).
    pub fn empty() -> RuleSet {
        compile(std::iter::empty(), &Gazetteer::empty()).expect("an empty rule set compiles")
    }

    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    fn entity_kind(&self, entity: u32) -> Option<u32> {
        self.entity_kinds.get(entity as usize).copied()
    }

    /// Every rule that fires on `doc`, in rule order, with its explanation.
    pub fn evaluate(&self, doc: &Document) -> Vec<RuleMatch> {
        self.fired(doc)
            .into_iter()
            .map(|fired| RuleMatch {
                rule: fired.rule,
                hits: self.explain(doc, &fired),
            })
            .collect()
    }

    /// Every rule that fires on `doc`, in rule order, not yet explained: the
    /// daemon explains only the matches that become alerts.
    pub fn fired(&self, doc: &Document) -> Vec<Fired> {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.fired_with(doc, &mut scratch),
            // Only reachable if evaluation were re-entered on this thread.
            Err(_) => self.fired_with(doc, &mut Scratch::default()),
        })
    }

    fn fired_with(&self, doc: &Document, scratch: &mut Scratch) -> Vec<Fired> {
        scratch.reset(self);
        self.terms.scan(doc, &mut scratch.hits);

        // A rule is a candidate once each of its requirements has an anchor
        // present: first the terms, then the entities and kinds mentioned.
        let Scratch {
            hits,
            met,
            met_touched,
            queued,
            candidates,
            gathered,
            complete,
            ..
        } = &mut *scratch;
        for &rule in &self.always {
            queued[rule as usize] = true;
            candidates.push(rule);
        }
        // Entities and kinds mentioned, each with the fields it occurs in.
        let mut anchors: Vec<(Anchor, FieldMask)> = Vec::with_capacity(2 * doc.mentions.len() + 1);
        for m in &doc.mentions {
            anchors.push((Anchor::Entity(m.entity), m.field.bit()));
            if let Some(kind) = self.entity_kind(m.entity) {
                anchors.push((Anchor::Kind(kind), m.field.bit()));
            }
        }
        for g in &doc.guessed {
            anchors.push((Anchor::Kind(PERSON_KIND), g.field.bit()));
        }
        anchors.sort_unstable_by_key(|&(anchor, _)| anchor);
        let mut n = self.gather_terms(hits, gathered);
        for run in anchors.chunk_by(|a, b| a.0 == b.0) {
            if let Some(postings) = self.by_anchor.get(&run[0].0) {
                let fields = run.iter().fold(0, |mask, &(_, f)| mask | f);
                if gathered.len() < n + postings.len() {
                    gathered.resize(n + postings.len(), NO_POSTING);
                }
                for (to, from) in gathered[n..].iter_mut().zip(postings) {
                    *to = self.gathered(from, fields);
                }
                n += postings.len();
            }
        }
        self.meet(&gathered[..n], met, met_touched, complete);
        for &clause in complete.iter() {
            let rule = self.clause_rule[clause as usize];
            if !queued[rule as usize] {
                queued[rule as usize] = true;
                candidates.push(rule);
            }
        }
        let candidates = std::mem::take(candidates);

        let mut eval = Eval {
            set: self,
            doc,
            scratch,
            regex_cache: HashMap::new(),
        };
        let mut fired = Vec::new();
        for &rule_index in &candidates {
            let start = self.starts[rule_index as usize] as usize;
            if eval.truth(start) {
                fired.push(Fired {
                    rule: rule_index as usize,
                    positions: kept_for_explanation(eval.positions(start)),
                });
            }
        }
        scratch.candidates = candidates;
        fired.sort_unstable_by_key(|f| f.rule);
        fired
    }

    /// Copies the postings of every term present in a document to the start
    /// of `gathered` (as [`RuleSet::gathered`] makes them), and returns how
    /// many there are.
    ///
    /// Four are copied at a time whatever the term's number (most have one to
    /// three), so that no branch depends on how many a term has: which terms
    /// occur is different for every document, and branches on it were
    /// guessed wrong once or twice per present term.
    fn gather_terms(&self, hits: &TermHits, gathered: &mut Vec<Posting>) -> usize {
        if gathered.len() < self.term_postings.len() + 4 {
            gathered.resize(self.term_postings.len() + 4, NO_POSTING);
        }
        let mut n = 0;
        for &term in hits.present() {
            let t = term as usize;
            let (start, end) = (
                self.term_starts[t] as usize,
                self.term_starts[t + 1] as usize,
            );
            let fields = hits.fields(term);
            let from: &[Posting; 4] = self.term_postings[start..start + 4]
                .try_into()
                .expect("the postings end with four spare ones");
            let to: &mut [Posting; 4] = (&mut gathered[n..n + 4])
                .try_into()
                .expect("room for every posting and four more");
            for (to, from) in to.iter_mut().zip(from) {
                *to = self.gathered(from, fields);
            }
            if end - start > 4 {
                for (k, from) in self.term_postings[start + 4..end].iter().enumerate() {
                    gathered[n + 4 + k] = self.gathered(from, fields);
                }
            }
            n += end - start;
        }
        n
    }

    /// Meets the requirements of `postings` (gathered from the terms,
    /// entities and kinds of a document), and lists in `complete` the
    /// clauses whose requirements are then all met. One walk without a
    /// branch per posting.
    fn meet(
        &self,
        postings: &[Posting],
        met: &mut [u8],
        met_touched: &mut Vec<u32>,
        complete: &mut Vec<u32>,
    ) {
        let n = postings.len();
        met_touched.resize(n, 0);
        complete.resize(n, 0);
        let (mut touched, mut done) = (0, 0);
        for p in postings {
            let c = p.clause as usize;
            let old = met[c];
            let new = old | p.bit;
            met[c] = new;
            met_touched[touched] = p.clause;
            touched += usize::from((old == 0) & (new != 0));
            complete[done] = p.clause;
            done += usize::from((new != old) & (new == self.required[c]));
        }
        met_touched.truncate(touched);
        complete.truncate(done);
    }

    /// `posting` of an anchor that occurs in `fields`, as [`RuleSet::meet`]
    /// walks it: pointed at the clause nothing completes where the posting
    /// asks for other fields. (A select of the 32-bit clause: x86 has no
    /// conditional move of a byte, and a select of the bit became a branch.)
    #[inline(always)]
    fn gathered(&self, posting: &Posting, fields: FieldMask) -> Posting {
        let nowhere = (self.required.len() - 1) as u32;
        Posting {
            clause: std::hint::select_unpredictable(
                posting.fields & fields != 0,
                posting.clause,
                nowhere,
            ),
            ..*posting
        }
    }

    /// The hits that explain why a rule fired on `doc`.
    pub fn explain(&self, doc: &Document, fired: &Fired) -> Vec<Hit> {
        let labels = |p: &Pos| {
            let atom = &self.atoms[p.atom as usize];
            match atom.kind {
                AtomKind::Kind { .. } | AtomKind::Entity { .. } => {
                    let name = if p.entity >= GUESSED_BASE {
                        doc.guessed_names
                            .get((p.entity - GUESSED_BASE) as usize)
                            .map_or("?", String::as_str)
                    } else {
                        self.entity_names
                            .get(p.entity as usize)
                            .map_or("?", String::as_str)
                    };
                    format!("{} = {name}", atom.label)
                }
                _ => atom.label.clone(),
            }
        };
        explain_positions(doc, fired.positions.clone(), labels)
    }
}

/// Whether a position is an entity's (or a kind's) rather than a word's.
fn is_entity(p: &Pos) -> bool {
    p.entity != u32::MAX
}

/// Positions in the order [`explain_positions`] goes through them, each once.
fn sort_for_explanation(positions: &mut Vec<Pos>) {
    positions.sort_unstable_by_key(|p| (is_entity(p), p.field, p.start, p.end, p.atom, p.entity));
    positions.dedup();
}

/// The positions of a fired rule that [`explain_positions`] can use: the
/// first two of each word atom and the first of each entity of an entity
/// atom. A rule that fires on a long item (a feed may send megabytes of
/// text) would otherwise keep every occurrence of its terms until it is
/// explained, for each rule that fired.
fn kept_for_explanation(mut positions: Vec<Pos>) -> Vec<Pos> {
    // The usual handful is kept as it is, at no cost.
    if positions.len() <= 64 {
        return positions;
    }
    sort_for_explanation(&mut positions);
    let mut taken: HashMap<(u32, u32), u8> = HashMap::new();
    positions.retain(|p| {
        let taken = taken.entry((p.atom, p.entity)).or_default();
        *taken = taken.saturating_add(1);
        *taken <= if is_entity(p) { 1 } else { 2 }
    });
    positions.shrink_to_fit();
    positions
}

/// Turns positions into at most [`MAX_HITS`] hits: words and phrases first
/// (two per term), then entities (one each), each group in text order.
pub(crate) fn explain_positions(
    doc: &Document,
    mut positions: Vec<Pos>,
    label: impl Fn(&Pos) -> String,
) -> Vec<Hit> {
    sort_for_explanation(&mut positions);
    let mut per_label: HashMap<String, usize> = HashMap::new();
    let mut hits = Vec::new();
    for p in positions {
        let term = label(&p);
        let seen = per_label.entry(term.clone()).or_default();
        *seen += 1;
        if *seen > if is_entity(&p) { 1 } else { 2 } {
            continue;
        }
        let field = Field::ALL[p.field as usize];
        let text = doc.field(field);
        if p.start >= p.end || p.end as usize > text.tokens.len() {
            continue;
        }
        let range = text.original_range(p.start as usize, p.end as usize - 1);
        hits.push(Hit {
            term,
            field,
            snippet: snippet(&text.original, range.clone(), SNIPPET_CONTEXT),
            range,
        });
        if hits.len() >= MAX_HITS {
            break;
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A long item that repeats a rule's words keeps a few positions per
    /// fired rule, and is explained as if it kept them all.
    #[test]
    fn fired_rules_keep_what_their_explanation_needs() {
        let gazetteer = Gazetteer::builtin();
        let text = "Troops were deployed to France and Germany. ".repeat(20_000);
        let doc = Document::new("Troops", "", &text, &gazetteer);
        let queries: Vec<(String, String)> = (0..20)
            .map(|i| {
                (
                    format!("r{i}"),
                    format!("troops NEAR/{} deploy* AND kind:country>=2", i + 2),
                )
            })
            .collect();
        let set = compile(
            queries.iter().map(|(i, q)| (i.as_str(), q.as_str())),
            &gazetteer,
        )
        .unwrap();
        let fired = set.fired(&doc);
        assert_eq!(fired.len(), 20);
        for f in &fired {
            // troops, deploy*, and France and Germany for kind:country.
            assert!(f.positions.len() <= 6, "{} positions", f.positions.len());
        }
        // Every position, from the reference interpreter.
        let expr = parse(&queries[0].1).unwrap();
        let all = interpret::positions(&expr, &doc, &gazetteer);
        assert!(all.len() > 60_000, "{} positions", all.len());
        let label = |p: &Pos| format!("{}/{}", p.atom, p.entity);
        let hits = |positions: Vec<Pos>| -> Vec<(String, std::ops::Range<usize>)> {
            explain_positions(&doc, positions, label)
                .into_iter()
                .map(|h| (h.term, h.range))
                .collect()
        };
        assert_eq!(hits(kept_for_explanation(all.clone())), hits(all));
    }

    proptest! {
        // Failures are reported, not written next to the sources.
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// The early-stopping count of distinct entities agrees with sorting them all.
        #[test]
        fn at_least_distinct_counts_like_sorting(
            entities in prop::collection::vec(0u32..12, 0..40),
            min in 0usize..14,
        ) {
            let positions: Vec<Pos> = entities
                .iter()
                .map(|&entity| Pos { field: 0, start: 0, end: 1, atom: 0, entity })
                .collect();
            prop_assert_eq!(
                at_least_distinct(&positions, min),
                distinct_entities(&positions) >= min
            );
        }
    }
}
