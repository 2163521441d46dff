//! Rules: compile the user's queries once, then evaluate documents fast.
//!
//! [`compile`] parses every query ([`syntax`]), resolves entity names and kinds
//! against the [`Gazetteer`], and builds one [`RuleSet`]: every word, prefix and
//! phrase of every rule goes into a single Aho-Corasick automaton over the
//! folded token stream, and each rule becomes a small boolean program over
//! *atoms* (terms, regexes, entities, kinds). Each rule is indexed by a set of
//! atoms at least one of which must be present for it to match, so a document
//! only evaluates the rules its hits could satisfy; the cost stays nearly flat
//! in the number of rules. Regex atoms run lazily, only when a rule that is
//! still undecided needs them.
//!
//! [`RuleSet::evaluate`] returns a [`RuleMatch`] per firing rule with the hits
//! that explain it (term, field, byte range, snippet). This module keeps no
//! state between documents and performs no I/O.

pub mod interpret;
pub mod syntax;

use std::collections::HashMap;
use std::ops::Range;

use aho_corasick::{AhoCorasick, MatchKind};
use serde::Serialize;

use crate::document::{Document, Field, FieldMask};
use crate::entities::{GUESSED_BASE, Gazetteer, PERSON_KIND, did_you_mean};
use crate::text::{NormText, snippet};
pub use syntax::{Expr, SyntaxError, parse};

/// Characters of context on each side of a hit in a snippet.
pub const SNIPPET_CONTEXT: usize = 50;
/// Hits reported per rule match (explanations stay short).
pub const MAX_HITS: usize = 10;

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

/// One term of a rule that explains why it fired.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub term: String,
    pub field: Field,
    #[serde(skip)]
    pub range: Range<usize>,
    pub snippet: String,
}

/// A rule that fired on a document.
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
    Atom(u32),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Near(Box<Node>, Box<Node>, u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Anchor {
    Term(u32),
    Entity(u32),
    Kind(u32),
}

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
    /// Words per term pattern.
    term_len: Vec<u32>,
    automaton: Option<AhoCorasick>,
    regexes: Vec<regex::Regex>,
    by_anchor: HashMap<Anchor, Vec<u32>>,
    always: Vec<u32>,
    entity_names: Vec<String>,
    entity_kinds: Vec<u32>,
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
        patterns: Vec::new(),
        pattern_index: HashMap::new(),
        term_len: Vec::new(),
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

    let mut by_anchor: HashMap<Anchor, Vec<u32>> = HashMap::new();
    let mut always = Vec::new();
    for (i, rule) in compiled.iter().enumerate() {
        match anchors(&rule.program, &builder.atoms) {
            Some(set) => {
                for a in set {
                    by_anchor.entry(a).or_default().push(i as u32);
                }
            }
            None => always.push(i as u32),
        }
    }
    let automaton = (!builder.patterns.is_empty()).then(|| {
        AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&builder.patterns)
            .expect(
                "rule patterns are folded words; the automaton builds for any realistic rule set",
            )
    });
    Ok(RuleSet {
        rules: compiled,
        atoms: builder.atoms,
        term_len: builder.term_len,
        automaton,
        regexes: builder.regexes,
        by_anchor,
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
    patterns: Vec<String>,
    pattern_index: HashMap<String, u32>,
    term_len: Vec<u32>,
    regexes: Vec<regex::Regex>,
    regex_index: HashMap<String, u32>,
}

impl Builder<'_> {
    fn node(&mut self, expr: &Expr) -> Result<Node, SyntaxError> {
        Ok(match expr {
            Expr::And(children) => Node::And(
                children
                    .iter()
                    .map(|c| self.node(c))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Or(children) => Node::Or(
                children
                    .iter()
                    .map(|c| self.node(c))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Not(child) => Node::Not(Box::new(self.node(child)?)),
            Expr::Near(a, b, n) => Node::Near(Box::new(self.node(a)?), Box::new(self.node(b)?), *n),
            atom => Node::Atom(self.atom(atom)?),
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
                let mut pattern = format!(" {}", words.join(" "));
                if !prefix {
                    pattern.push(' ');
                }
                let next = self.patterns.len() as u32;
                let term = *self.pattern_index.entry(pattern.clone()).or_insert(next);
                if term == next {
                    self.patterns.push(pattern);
                    self.term_len.push(words.len() as u32);
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

/// A set of anchors at least one of which must be present for `node` to be true,
/// or `None` when the node could be true without any (regex-only, negations).
fn anchors(node: &Node, atoms: &[Atom]) -> Option<Vec<Anchor>> {
    match node {
        Node::Atom(a) => match atoms[*a as usize].kind {
            AtomKind::Term { term } => Some(vec![Anchor::Term(term)]),
            AtomKind::Entity { entity } => Some(vec![Anchor::Entity(entity)]),
            AtomKind::Kind { kind, .. } => Some(vec![Anchor::Kind(kind)]),
            AtomKind::Regex { .. } => None,
        },
        Node::Not(_) => None,
        Node::And(children) => children
            .iter()
            .filter_map(|c| anchors(c, atoms))
            .min_by_key(Vec::len),
        Node::Near(a, b, _) => [anchors(a, atoms), anchors(b, atoms)]
            .into_iter()
            .flatten()
            .min_by_key(Vec::len),
        Node::Or(children) => {
            let mut all = Vec::new();
            for c in children {
                all.extend(anchors(c, atoms)?);
            }
            all.sort();
            all.dedup();
            Some(all)
        }
    }
}

/// Per-document evaluation state.
struct Eval<'a> {
    set: &'a RuleSet,
    doc: &'a Document,
    /// (term, position) sorted by term.
    term_hits: Vec<(u32, Pos)>,
    regex_cache: HashMap<u32, Vec<Pos>>,
}

impl Eval<'_> {
    fn term_positions(&self, term: u32) -> &[(u32, Pos)] {
        let start = self.term_hits.partition_point(|(t, _)| *t < term);
        let end = self.term_hits.partition_point(|(t, _)| *t <= term);
        &self.term_hits[start..end]
    }

    fn regex_positions(&mut self, regex: u32) -> &[Pos] {
        let set = self.set;
        let doc = self.doc;
        self.regex_cache
            .entry(regex)
            .or_insert_with(|| regex_hits(&set.regexes[regex as usize], doc, 0))
    }

    fn atom_positions(&mut self, atom_id: u32) -> Vec<Pos> {
        let atom = &self.set.atoms[atom_id as usize];
        let in_scope = |field: u8| atom.fields & (1 << field) != 0;
        let mut out: Vec<Pos> = match atom.kind {
            AtomKind::Term { term } => self
                .term_positions(term)
                .iter()
                .map(|(_, p)| *p)
                .filter(|p| in_scope(p.field))
                .collect(),
            AtomKind::Regex { regex } => {
                let fields = atom.fields;
                self.regex_positions(regex)
                    .iter()
                    .filter(|p| fields & (1 << p.field) != 0)
                    .copied()
                    .collect()
            }
            AtomKind::Entity { entity } => {
                mention_positions(self.doc, atom.fields, |e| e == entity)
            }
            AtomKind::Kind { kind, min } => kind_positions(self.doc, kind, min, atom.fields, |e| {
                self.set.entity_kind(e)
            }),
        };
        for p in &mut out {
            p.atom = atom_id;
        }
        out
    }

    fn atom_true(&mut self, atom_id: u32) -> bool {
        let atom = &self.set.atoms[atom_id as usize];
        match atom.kind {
            AtomKind::Term { term } => {
                let fields = atom.fields;
                self.term_positions(term)
                    .iter()
                    .any(|(_, p)| fields & (1 << p.field) != 0)
            }
            // A regex match counts even where it covers no whole token.
            AtomKind::Regex { regex } => {
                regex_any(&self.set.regexes[regex as usize], self.doc, atom.fields)
            }
            _ => !self.atom_positions(atom_id).is_empty(),
        }
    }

    fn truth(&mut self, node: &Node) -> bool {
        match node {
            Node::Atom(a) => self.atom_true(*a),
            Node::And(children) => children.iter().all(|c| self.truth(c)),
            Node::Or(children) => children.iter().any(|c| self.truth(c)),
            Node::Not(child) => !self.truth(child),
            Node::Near(..) => !self.positions(node).is_empty(),
        }
    }

    /// Positions of the atoms that make `node` true (empty when it is false).
    fn positions(&mut self, node: &Node) -> Vec<Pos> {
        match node {
            Node::Atom(a) => self.atom_positions(*a),
            Node::And(children) => {
                if !self.truth(node) {
                    return Vec::new();
                }
                children.iter().flat_map(|c| self.positions(c)).collect()
            }
            Node::Or(children) => children.iter().flat_map(|c| self.positions(c)).collect(),
            Node::Not(_) => Vec::new(),
            Node::Near(a, b, n) => {
                let left = self.positions(a);
                if left.is_empty() {
                    return Vec::new();
                }
                let right = self.positions(b);
                near_positions(&left, &right, *n)
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
        let mut term_hits = Vec::new();
        if let Some(automaton) = &self.automaton {
            for field in Field::ALL {
                let text = doc.field(field);
                for m in automaton.find_overlapping_iter(&text.folded) {
                    let term = m.pattern().as_u32();
                    let Some(start) = text.token_at_folded(m.start() + 1) else {
                        continue;
                    };
                    term_hits.push((
                        term,
                        Pos {
                            field: field as u8,
                            start: start as u32,
                            end: start as u32 + self.term_len[term as usize],
                            atom: 0,
                            entity: u32::MAX,
                        },
                    ));
                }
            }
        }
        term_hits.sort_unstable();

        let mut candidates: Vec<u32> = self.always.clone();
        let push_anchor = |anchor: Anchor, candidates: &mut Vec<u32>| {
            if let Some(rules) = self.by_anchor.get(&anchor) {
                candidates.extend_from_slice(rules);
            }
        };
        let mut last_term = u32::MAX;
        for (term, _) in &term_hits {
            if *term != last_term {
                push_anchor(Anchor::Term(*term), &mut candidates);
                last_term = *term;
            }
        }
        let mut entities: Vec<u32> = doc.mentions.iter().map(|m| m.entity).collect();
        entities.sort_unstable();
        entities.dedup();
        let mut kinds: Vec<u32> = entities
            .iter()
            .filter_map(|&e| self.entity_kind(e))
            .collect();
        if !doc.guessed.is_empty() {
            kinds.push(PERSON_KIND);
        }
        kinds.sort_unstable();
        kinds.dedup();
        for &e in &entities {
            push_anchor(Anchor::Entity(e), &mut candidates);
        }
        for &k in &kinds {
            push_anchor(Anchor::Kind(k), &mut candidates);
        }
        candidates.sort_unstable();
        candidates.dedup();

        let mut eval = Eval {
            set: self,
            doc,
            term_hits,
            regex_cache: HashMap::new(),
        };
        let mut matches = Vec::new();
        for rule_index in candidates {
            let rule = &self.rules[rule_index as usize];
            if eval.truth(&rule.program) {
                let positions = eval.positions(&rule.program);
                let hits = self.explain(doc, positions);
                matches.push(RuleMatch {
                    rule: rule_index as usize,
                    hits,
                });
            }
        }
        matches
    }

    fn explain(&self, doc: &Document, positions: Vec<Pos>) -> Vec<Hit> {
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
        explain_positions(doc, positions, labels)
    }
}

/// Turns positions into at most [`MAX_HITS`] hits: words and phrases first
/// (two per term), then entities (one each), each group in text order.
pub(crate) fn explain_positions(
    doc: &Document,
    mut positions: Vec<Pos>,
    label: impl Fn(&Pos) -> String,
) -> Vec<Hit> {
    let is_entity = |p: &Pos| p.entity != u32::MAX;
    positions.sort_unstable_by_key(|p| (is_entity(p), p.field, p.start, p.end, p.atom, p.entity));
    positions.dedup();
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
