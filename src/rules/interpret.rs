//! A direct, slow interpreter of the query AST: the reference the compiled
//! matcher is tested against.
//!
//! It shares nothing with the compiled path but the semantics: terms are found
//! by scanning tokens one by one, every rule is evaluated on every document,
//! and regexes are compiled on the spot. Use it in tests and for one-off
//! queries, never in the daemon's hot path.

use crate::document::{Document, Field, FieldMask};
use crate::entities::Gazetteer;
use crate::rules::{
    Expr, Pos, kind_positions, mention_positions, near_positions, regex_any, regex_hits,
};

/// Whether `expr` is true of `doc`.
pub fn matches(expr: &Expr, doc: &Document, gazetteer: &Gazetteer) -> bool {
    Interpreter { doc, gazetteer }.truth(expr)
}

/// The positions that make `expr` true of `doc` (empty when false).
pub fn positions(expr: &Expr, doc: &Document, gazetteer: &Gazetteer) -> Vec<Pos> {
    Interpreter { doc, gazetteer }.positions(expr)
}

struct Interpreter<'a> {
    doc: &'a Document,
    gazetteer: &'a Gazetteer,
}

impl Interpreter<'_> {
    fn truth(&self, expr: &Expr) -> bool {
        match expr {
            Expr::And(children) => children.iter().all(|c| self.truth(c)),
            Expr::Or(children) => children.iter().any(|c| self.truth(c)),
            Expr::Not(child) => !self.truth(child),
            Expr::Regex {
                pattern, fields, ..
            } => match regex::Regex::new(pattern) {
                Ok(re) => regex_any(&re, self.doc, *fields),
                Err(_) => false,
            },
            other => !self.positions(other).is_empty(),
        }
    }

    fn positions(&self, expr: &Expr) -> Vec<Pos> {
        match expr {
            Expr::Text {
                words,
                prefix,
                fields,
                ..
            } => scan_text(self.doc, words, *prefix, *fields),
            Expr::Regex {
                pattern, fields, ..
            } => match regex::Regex::new(pattern) {
                Ok(re) => regex_hits(&re, self.doc, 0)
                    .into_iter()
                    .filter(|p| fields & (1 << p.field) != 0)
                    .collect(),
                Err(_) => Vec::new(),
            },
            Expr::Entity { name, fields, .. } => match self.gazetteer.lookup(name) {
                Some(entity) => mention_positions(self.doc, *fields, |e| e == entity),
                None => Vec::new(),
            },
            Expr::Kind {
                kind, min, fields, ..
            } => {
                let Some(kind) = self.gazetteer.kind_id(kind) else {
                    return Vec::new();
                };
                kind_positions(self.doc, kind, *min, *fields, |e| {
                    Some(self.gazetteer.entity(e).kind)
                })
            }
            Expr::And(children) => {
                if children.iter().all(|c| self.truth(c)) {
                    children.iter().flat_map(|c| self.positions(c)).collect()
                } else {
                    Vec::new()
                }
            }
            Expr::Or(children) => children.iter().flat_map(|c| self.positions(c)).collect(),
            Expr::Not(_) => Vec::new(),
            Expr::Near(a, b, n) => near_positions(&self.positions(a), &self.positions(b), *n),
        }
    }
}

/// Every occurrence of consecutive `words` (the last a prefix when `prefix`).
fn scan_text(doc: &Document, words: &[String], prefix: bool, fields: FieldMask) -> Vec<Pos> {
    let mut out = Vec::new();
    for field in Field::ALL {
        if fields & field.bit() == 0 {
            continue;
        }
        let text = doc.field(field);
        let n = text.tokens.len();
        for start in 0..n {
            if start + words.len() > n {
                break;
            }
            let all = words.iter().enumerate().all(|(k, w)| {
                let token = text.folded_token(start + k);
                if prefix && k + 1 == words.len() {
                    token.starts_with(w.as_str())
                } else {
                    token == w
                }
            });
            if all {
                out.push(Pos {
                    field: field as u8,
                    start: start as u32,
                    end: (start + words.len()) as u32,
                    atom: 0,
                    entity: u32::MAX,
                });
            }
        }
    }
    out
}
