//! Lexer and parser for the rule query language.
//!
//! Grammar (precedence from loosest to tightest: OR, AND, NOT, NEAR):
//!
//! ```text
//! query    = or_expr EOF
//! or_expr  = and_expr { "OR" and_expr }
//! and_expr = unary { [ "AND" ] unary }          (adjacency means AND)
//! unary    = "NOT" unary | near
//! near     = primary { ( "NEAR" | "NEAR/" n ) primary }
//! primary  = "(" or_expr ")" | scope | atom
//! scope    = ( "title:" | "summary:" | "content:" ) primary
//! atom     = word | word "*" | '"' phrase '"' | "/" regex "/"
//!          | "entity:" ( word | '"' phrase '"' ) | "kind:" name [ ">=" n ]
//! ```
//!
//! The parser resolves nothing outside the query itself: entity names and
//! kinds are checked by the compiler against the gazetteer. Every error carries
//! the byte span of the offending token so the caller can point a caret at it.

use std::ops::Range;

use crate::document::{ALL_FIELDS, Field, FieldMask};
use crate::text::fold_words;

/// Default distance of a bare `NEAR`.
pub const DEFAULT_NEAR: u32 = 10;
pub const MAX_NEAR: u32 = 1000;
const MAX_DEPTH: usize = 64;

/// A parse or compile error, located in the query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub span: Range<usize>,
    pub message: String,
}

impl SyntaxError {
    fn new(span: Range<usize>, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            span,
            message: message.into(),
        }
    }
}

/// The parsed form of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// One or more consecutive folded words; `prefix` makes the last one a prefix.
    Text {
        words: Vec<String>,
        prefix: bool,
        fields: FieldMask,
        span: Range<usize>,
    },
    /// A regular expression over the folded text of the allowed fields.
    Regex {
        pattern: String,
        fields: FieldMask,
        span: Range<usize>,
    },
    /// Any mention of a named entity (resolved by the compiler).
    Entity {
        name: String,
        fields: FieldMask,
        span: Range<usize>,
    },
    /// At least `min` distinct entities of a kind.
    Kind {
        kind: String,
        min: u32,
        fields: FieldMask,
        span: Range<usize>,
    },
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Near(Box<Expr>, Box<Expr>, u32),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    And,
    Or,
    Not,
    Near(u32),
    Word(String),
    Phrase(String),
    Regex(String),
    /// `title:`, `entity:` and friends.
    Scope(String),
    /// `>=` after a kind.
    AtLeast,
    Star,
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::And => "AND".into(),
        Tok::Or => "OR".into(),
        Tok::Not => "NOT".into(),
        Tok::Near(_) => "NEAR".into(),
        Tok::Word(w) => format!("word {w:?}"),
        Tok::Phrase(p) => format!("phrase \"{p}\""),
        Tok::Regex(r) => format!("regex /{r}/"),
        Tok::Scope(s) => format!("{s}:"),
        Tok::AtLeast => "'>='".into(),
        Tok::Star => "'*'".into(),
    }
}

fn is_word_byte(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '(' | ')' | '"' | ':' | '*' | '>')
}

fn lex(src: &str) -> Result<Vec<(Tok, Range<usize>)>, SyntaxError> {
    let mut out = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | '*' => {
                chars.next();
                let tok = match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    _ => Tok::Star,
                };
                out.push((tok, start..start + 1));
            }
            '>' => {
                chars.next();
                if chars.next_if(|&(_, c)| c == '=').is_none() {
                    return Err(SyntaxError::new(
                        start..start + 1,
                        "expected '>=' (at least)",
                    ));
                }
                out.push((Tok::AtLeast, start..start + 2));
            }
            '"' => {
                chars.next();
                let body_start = start + 1;
                let end = loop {
                    match chars.next() {
                        Some((i, '"')) => break i,
                        Some(_) => {}
                        None => {
                            return Err(SyntaxError::new(
                                start..start + 1,
                                "unterminated phrase: this quote is never closed",
                            ));
                        }
                    }
                };
                out.push((
                    Tok::Phrase(src[body_start..end].to_string()),
                    start..end + 1,
                ));
            }
            '/' => {
                chars.next();
                let mut pattern = String::new();
                let end = loop {
                    match chars.next() {
                        Some((i, '/')) => break i,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, '/')) => pattern.push('/'),
                            Some((_, c)) => {
                                pattern.push('\\');
                                pattern.push(c);
                            }
                            None => pattern.push('\\'),
                        },
                        Some((_, c)) => pattern.push(c),
                        None => {
                            return Err(SyntaxError::new(
                                start..start + 1,
                                "unterminated regex: expected a closing '/'",
                            ));
                        }
                    }
                };
                out.push((Tok::Regex(pattern), start..end + 1));
            }
            ':' => {
                return Err(SyntaxError::new(
                    start..start + 1,
                    "unexpected ':': a field scope is written title:, summary:, content:, entity: or kind:",
                ));
            }
            _ => {
                let mut end = src.len();
                while let Some(&(i, c)) = chars.peek() {
                    if !is_word_byte(c) {
                        end = i;
                        break;
                    }
                    chars.next();
                }
                let word = &src[start..end];
                if chars.next_if(|&(_, c)| c == ':').is_some() {
                    out.push((Tok::Scope(word.to_string()), start..end + 1));
                    continue;
                }
                let tok = match word {
                    "AND" => Tok::And,
                    "OR" => Tok::Or,
                    "NOT" => Tok::Not,
                    "NEAR" => Tok::Near(DEFAULT_NEAR),
                    w if w.starts_with("NEAR/") => {
                        let n = &w[5..];
                        match n.parse::<u32>() {
                            Ok(n) if (1..=MAX_NEAR).contains(&n) => Tok::Near(n),
                            _ => {
                                return Err(SyntaxError::new(
                                    start..end,
                                    format!(
                                        "NEAR needs a distance between 1 and {MAX_NEAR}, as in NEAR/5"
                                    ),
                                ));
                            }
                        }
                    }
                    w => Tok::Word(w.to_string()),
                };
                out.push((tok, start..end));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, Range<usize>)>,
    pos: usize,
    end: usize,
    depth: usize,
}

/// Parses a query into an [`Expr`].
pub fn parse(src: &str) -> Result<Expr, SyntaxError> {
    let toks = lex(src)?;
    if toks.is_empty() {
        return Err(SyntaxError::new(
            0..src.len().max(1),
            "empty query: expected a term",
        ));
    }
    let mut parser = Parser {
        toks,
        pos: 0,
        end: src.len(),
        depth: 0,
    };
    let expr = parser.or_expr(ALL_FIELDS)?;
    if let Some((tok, span)) = parser.peek() {
        let message = if *tok == Tok::RParen {
            "unbalanced parenthesis: nothing to close here".to_string()
        } else {
            format!(
                "expected AND, OR or the end of the query, found {}",
                describe(tok)
            )
        };
        return Err(SyntaxError::new(span.clone(), message));
    }
    if !needs_presence(&expr) {
        return Err(SyntaxError::new(
            0..src.len(),
            "this query matches items that lack something, so it would fire on almost every item: \
             it needs at least one term that must be present",
        ));
    }
    Ok(expr)
}

/// Something in a valid query that probably does not mean what its writer
/// meant, located like a [`SyntaxError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryWarning {
    pub span: Range<usize>,
    pub message: String,
}

/// The likely slips in a query that parses:
/// - operators written in lowercase (`or`, `near/5`), which are looked for
///   as words;
/// - the operators of other search syntaxes that make words (`-word`,
///   `a|b`); those that make no word, such as `||` and `&&`, are errors (see
///   [`parse`]);
/// - parts of a regex that can never match the folded text (`/Troops/`,
///   `/e-mail/`).
///
/// Words in quotes are never reported: quoting is how a query says it means
/// the word. A query that does not parse has no warnings (its error is
/// reported instead).
pub fn lint(src: &str) -> Vec<QueryWarning> {
    let (Ok(_), Ok(toks)) = (parse(src), lex(src)) else {
        return Vec::new();
    };
    let mut warnings = Vec::new();
    for (i, (tok, span)) in toks.iter().enumerate() {
        if let Tok::Regex(pattern) = tok
            && let Some((part, c)) = never_folded(pattern)
        {
            // Between the slashes, the source has `\/` where the pattern has `/`.
            let body = &src[span.start + 1..span.end - 1];
            let at = |offset| span.start + 1 + source_offset(body, offset);
            let span = at(part.start)..at(part.end);
            warnings.push(QueryWarning {
                message: dead_regex_part(&src[span.clone()], c),
                span,
            });
        }
        let Tok::Word(word) = tok else {
            continue;
        };
        // An entity's or a kind's name, and a prefix (`or*`), are meant as written.
        let named =
            i > 0 && matches!(&toks[i - 1].0, Tok::Scope(s) if s == "entity" || s == "kind");
        let prefix = matches!(toks.get(i + 1), Some((Tok::Star, _)));
        if !named
            && !prefix
            && let Some(message) = slip(word)
        {
            warnings.push(QueryWarning {
                span: span.clone(),
                message,
            });
        }
    }
    warnings
}

/// The first part of regex `pattern` that looks for a character the folded
/// text it runs on never contains (an uppercase or accented letter,
/// punctuation, a line break), if any: where the part is in the pattern,
/// and the character. A class counts when none of its characters can occur
/// (`[A-Z]`). Such a part of a pattern never matches.
fn never_folded(pattern: &str) -> Option<(Range<usize>, char)> {
    use regex_syntax::ast::{Ast, ClassSet, ClassSetItem, Flag, GroupKind};

    /// Whether the pattern ignores case somewhere: then an uppercase letter
    /// may stand for its lowercase (the check is then on that).
    fn caseless(ast: &Ast) -> bool {
        match ast {
            Ast::Flags(set) => set.flags.flag_state(Flag::CaseInsensitive) == Some(true),
            Ast::Group(group) => {
                matches!(&group.kind, GroupKind::NonCapturing(flags)
                    if flags.flag_state(Flag::CaseInsensitive) == Some(true))
                    || caseless(&group.ast)
            }
            Ast::Repetition(r) => caseless(&r.ast),
            Ast::Alternation(a) => a.asts.iter().any(caseless),
            Ast::Concat(c) => c.asts.iter().any(caseless),
            _ => false,
        }
    }

    /// The characters of a class item, where it is a literal or a small range.
    fn chars(item: &ClassSetItem) -> Option<Vec<char>> {
        match item {
            ClassSetItem::Literal(l) => Some(vec![l.c]),
            ClassSetItem::Range(r) if (r.end.c as u32).saturating_sub(r.start.c as u32) < 512 => {
                Some((r.start.c..=r.end.c).collect())
            }
            ClassSetItem::Union(u) => u
                .items
                .iter()
                .map(chars)
                .collect::<Option<Vec<Vec<char>>>>()
                .map(|v| v.concat()),
            _ => None,
        }
    }

    fn find(ast: &Ast, caseless: bool) -> Option<(Range<usize>, char)> {
        let occurs = |c: char| {
            let c = if caseless {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                c
            };
            c == ' ' || fold_words(c.encode_utf8(&mut [0; 4])) == [c.to_string()]
        };
        let written = |span: &regex_syntax::ast::Span| span.start.offset..span.end.offset;
        match ast {
            Ast::Literal(l) => (!occurs(l.c)).then(|| (written(&l.span), l.c)),
            Ast::ClassBracketed(class) if !class.negated => match &class.kind {
                ClassSet::Item(item) => {
                    let all = chars(item)?;
                    (!all.is_empty() && !all.iter().any(|&c| occurs(c)))
                        .then(|| (written(&class.span), all[0]))
                }
                ClassSet::BinaryOp(_) => None,
            },
            Ast::Repetition(r) => find(&r.ast, caseless),
            Ast::Group(g) => find(&g.ast, caseless),
            Ast::Alternation(a) => a.asts.iter().find_map(|a| find(a, caseless)),
            Ast::Concat(c) => c.asts.iter().find_map(|a| find(a, caseless)),
            _ => None,
        }
    }

    let ast = regex_syntax::ast::parse::Parser::new()
        .parse(pattern)
        .ok()?;
    find(&ast, caseless(&ast))
}

/// Where byte `offset` of a regex pattern is in `body`, the source text
/// between its slashes, which writes each `/` of the pattern as `\/` (see
/// [`lex`]).
fn source_offset(body: &str, offset: usize) -> usize {
    let mut pattern = 0;
    let mut source = 0;
    let bytes = body.as_bytes();
    while pattern < offset && source < bytes.len() {
        // `\/` is one byte of pattern; any other escape is two, as written.
        let step = match bytes[source] {
            b'\\' if bytes.get(source + 1) == Some(&b'/') => (1, 2),
            b'\\' if source + 1 < bytes.len() => (2, 2),
            _ => (1, 1),
        };
        pattern += step.0;
        source += step.1;
    }
    source.min(body.len())
}

/// The warning for the `part` of a regex that looks for `c`, as
/// [`never_folded`] finds them.
fn dead_regex_part(part: &str, c: char) -> String {
    let fix = match fold_words(c.encode_utf8(&mut [0; 4])).as_slice() {
        [_] if part.starts_with('[') => "write it in lowercase, without accents".to_string(),
        [folded] => format!("write `{folded}`"),
        _ => "punctuation and line breaks are a single space there: match a space".to_string(),
    };
    format!(
        "`{part}` in this regex never matches: a regex runs on text in lowercase, \
         without accents, punctuation or line breaks; {fix}"
    )
}

/// What is wrong with bare word `word` of a query, if it looks like an
/// operator.
fn slip(word: &str) -> Option<String> {
    let lower = word.to_lowercase();
    let quoted = |w: &str| format!("\"{w}\"");
    match lower.as_str() {
        "and" | "or" | "not" | "near" => {
            let operator = if lower == "near" {
                "NEAR or NEAR/n".to_string()
            } else {
                lower.to_uppercase()
            };
            return Some(format!(
                "`{word}` is looked for as a word: operators are written in capitals ({operator}); \
                 put it in quotes ({}) to look for the word without this warning",
                quoted(&lower)
            ));
        }
        _ => {}
    }
    if let Some(n) = lower.strip_prefix("near/")
        && n.parse::<u32>().is_ok()
    {
        return Some(format!(
            "`{word}` is looked for as the words {}: operators are written in capitals (NEAR/{n})",
            quoted(&fold_words(word).join(" "))
        ));
    }
    if let Some(rest) = word.strip_prefix('-') {
        let words = fold_words(rest);
        if !words.is_empty() {
            let shown = words.join(" ");
            return Some(format!(
                "`{word}` looks for {} instead of leaving it out: write NOT {} to leave out items that have it",
                quoted(&shown),
                if words.len() == 1 {
                    shown.clone()
                } else {
                    quoted(&shown)
                }
            ));
        }
    }
    if word.contains('|') && fold_words(word).len() > 1 {
        return Some(format!(
            "`{word}` is looked for as the words {}: `|` is not an operator, write OR between terms",
            quoted(&fold_words(word).join(" "))
        ));
    }
    None
}

/// Whether the expression can only be true if some positive atom occurs.
fn needs_presence(expr: &Expr) -> bool {
    match expr {
        Expr::Text { .. } | Expr::Regex { .. } | Expr::Entity { .. } | Expr::Kind { .. } => true,
        Expr::Near(..) => true,
        Expr::And(children) => children.iter().any(needs_presence),
        Expr::Or(children) => children.iter().all(needs_presence),
        Expr::Not(_) => false,
    }
}

impl Parser {
    fn peek(&self) -> Option<&(Tok, Range<usize>)> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<(Tok, Range<usize>)> {
        let tok = self.toks.get(self.pos).cloned();
        self.pos += 1;
        tok
    }

    fn eof_span(&self) -> Range<usize> {
        self.end..self.end + 1
    }

    fn after(&self, what: &str) -> SyntaxError {
        match self.peek() {
            Some((tok, span)) => SyntaxError::new(
                span.clone(),
                format!("expected a term after {what}, found {}", describe(tok)),
            ),
            None => SyntaxError::new(self.eof_span(), format!("expected a term after {what}")),
        }
    }

    fn starts_unary(&self) -> bool {
        matches!(
            self.peek(),
            Some((
                Tok::LParen
                    | Tok::Not
                    | Tok::Word(_)
                    | Tok::Phrase(_)
                    | Tok::Regex(_)
                    | Tok::Scope(_),
                _
            ))
        )
    }

    fn or_expr(&mut self, fields: FieldMask) -> Result<Expr, SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let span = self.peek().map_or(self.eof_span(), |(_, s)| s.clone());
            return Err(SyntaxError::new(
                span,
                format!("query nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        let mut alternatives = vec![self.and_expr(fields)?];
        while let Some((Tok::Or, _)) = self.peek() {
            self.pos += 1;
            if !self.starts_unary() {
                return Err(self.after("OR"));
            }
            alternatives.push(self.and_expr(fields)?);
        }
        self.depth -= 1;
        Ok(if alternatives.len() == 1 {
            alternatives.pop().expect("one alternative is present")
        } else {
            Expr::Or(alternatives)
        })
    }

    fn and_expr(&mut self, fields: FieldMask) -> Result<Expr, SyntaxError> {
        let mut all = vec![self.unary(fields)?];
        loop {
            match self.peek() {
                Some((Tok::And, _)) => {
                    self.pos += 1;
                    if !self.starts_unary() {
                        return Err(self.after("AND"));
                    }
                }
                _ if self.starts_unary() => {}
                _ => break,
            }
            all.push(self.unary(fields)?);
        }
        Ok(if all.len() == 1 {
            all.pop().expect("one operand is present")
        } else {
            Expr::And(all)
        })
    }

    fn unary(&mut self, fields: FieldMask) -> Result<Expr, SyntaxError> {
        // Iterative, so a long run of NOTs cannot exhaust the stack; pairs cancel.
        let mut negations = 0usize;
        while let Some((Tok::Not, _)) = self.peek() {
            self.pos += 1;
            negations += 1;
            if !self.starts_unary() {
                return Err(self.after("NOT"));
            }
        }
        let expr = self.near(fields)?;
        Ok(if negations % 2 == 1 {
            Expr::Not(Box::new(expr))
        } else {
            expr
        })
    }

    fn near(&mut self, fields: FieldMask) -> Result<Expr, SyntaxError> {
        let left_span = self.peek().map(|(_, s)| s.clone());
        let mut left = self.primary(fields)?;
        let mut chain = 0;
        while let Some((Tok::Near(distance), near_span)) = self.peek().cloned() {
            self.pos += 1;
            chain += 1;
            if chain > MAX_DEPTH {
                return Err(SyntaxError::new(
                    near_span,
                    format!("more than {MAX_DEPTH} NEAR in a row; group terms with OR instead"),
                ));
            }
            if matches!(self.peek(), Some((Tok::Not, _))) || contains_only_negation(&left) {
                let span = left_span.clone().unwrap_or(near_span);
                return Err(SyntaxError::new(
                    span,
                    "NEAR needs terms that occur in the text on both sides; move NOT outside the NEAR",
                ));
            }
            if !self.starts_unary() {
                return Err(self.after("NEAR"));
            }
            let right = self.primary(fields)?;
            if contains_only_negation(&right) {
                return Err(SyntaxError::new(
                    near_span,
                    "NEAR needs terms that occur in the text on both sides; move NOT outside the NEAR",
                ));
            }
            left = Expr::Near(Box::new(left), Box::new(right), distance);
        }
        Ok(left)
    }

    fn primary(&mut self, fields: FieldMask) -> Result<Expr, SyntaxError> {
        let Some((tok, span)) = self.next() else {
            return Err(SyntaxError::new(self.eof_span(), "expected a term"));
        };
        match tok {
            Tok::LParen => {
                if matches!(self.peek(), Some((Tok::RParen, _))) {
                    return Err(SyntaxError::new(
                        span,
                        "empty parentheses: expected a term inside",
                    ));
                }
                let inner = self.or_expr(fields)?;
                match self.next() {
                    Some((Tok::RParen, _)) => Ok(inner),
                    _ => Err(SyntaxError::new(
                        span,
                        "unbalanced parenthesis opened here: expected ')'",
                    )),
                }
            }
            Tok::Scope(scope) => {
                // Scopes recurse into primary; count them like parentheses.
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(SyntaxError::new(
                        span,
                        format!("query nests deeper than {MAX_DEPTH} levels"),
                    ));
                }
                let scoped = self.scoped(&scope, span, fields);
                self.depth -= 1;
                scoped
            }
            Tok::Word(word) => {
                let prefix = self.take_star(&span)?;
                text_expr(&word, prefix, fields, span)
            }
            Tok::Phrase(phrase) => {
                let prefix = self.take_star(&span)?;
                text_expr(&phrase, prefix, fields, span)
            }
            Tok::Regex(pattern) => {
                if let Err(e) = regex::Regex::new(&pattern) {
                    let detail = e.to_string();
                    let last = detail
                        .lines()
                        .last()
                        .unwrap_or("invalid")
                        .trim()
                        .to_string();
                    return Err(SyntaxError::new(span, format!("invalid regex: {last}")));
                }
                // Folded text is at least " ": a regex matching that matches every item.
                if regex::Regex::new(&pattern).is_ok_and(|re| re.is_match("") || re.is_match(" ")) {
                    return Err(SyntaxError::new(
                        span,
                        "this regex matches empty text, so it would match every item",
                    ));
                }
                Ok(Expr::Regex {
                    pattern,
                    fields,
                    span,
                })
            }
            Tok::RParen => Err(SyntaxError::new(
                span,
                "unbalanced parenthesis: nothing to close here",
            )),
            Tok::Star => Err(SyntaxError::new(
                span,
                "'*' must follow a word, as in deploy*",
            )),
            other => Err(SyntaxError::new(
                span,
                format!("expected a term, found {}", describe(&other)),
            )),
        }
    }

    /// Consumes a `*` written right after a word or phrase.
    fn take_star(&mut self, word_span: &Range<usize>) -> Result<bool, SyntaxError> {
        match self.peek() {
            Some((Tok::Star, star)) if star.start == word_span.end => {
                self.pos += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn scoped(
        &mut self,
        scope: &str,
        span: Range<usize>,
        fields: FieldMask,
    ) -> Result<Expr, SyntaxError> {
        if let Some(field) = Field::from_name(scope) {
            if fields != ALL_FIELDS && fields != field.bit() {
                return Err(SyntaxError::new(
                    span,
                    format!("{scope}: inside another field scope can never match"),
                ));
            }
            if !self.starts_unary() || matches!(self.peek(), Some((Tok::Not, _))) {
                return Err(self.after(&format!("{scope}:")));
            }
            return self.primary(field.bit());
        }
        match scope {
            "entity" => match self.next() {
                Some((Tok::Word(name) | Tok::Phrase(name), name_span)) => Ok(Expr::Entity {
                    name,
                    fields,
                    span: span.start..name_span.end,
                }),
                _ => Err(SyntaxError::new(
                    span,
                    "entity: needs a name, as in entity:\"North Korea\"",
                )),
            },
            "kind" => {
                let Some((Tok::Word(kind), kind_span)) = self.next() else {
                    return Err(SyntaxError::new(
                        span,
                        "kind: needs a kind, as in kind:country or kind:country>=2",
                    ));
                };
                let mut end = kind_span.end;
                let mut min = 1;
                if let Some((Tok::AtLeast, _)) = self.peek() {
                    self.pos += 1;
                    match self.next() {
                        Some((Tok::Word(n), n_span)) => {
                            end = n_span.end;
                            min = match n.parse::<u32>() {
                                Ok(n) if (1..=100).contains(&n) => n,
                                _ => {
                                    return Err(SyntaxError::new(
                                        n_span,
                                        "kind:K>=N needs N between 1 and 100",
                                    ));
                                }
                            };
                        }
                        _ => {
                            return Err(SyntaxError::new(
                                kind_span.end..kind_span.end + 2,
                                "expected a number after '>='",
                            ));
                        }
                    }
                }
                Ok(Expr::Kind {
                    kind,
                    min,
                    fields,
                    span: kind_span.start.min(span.start)..end,
                })
            }
            other => {
                let hint = crate::entities::did_you_mean(
                    other,
                    ["title", "summary", "content", "entity", "kind"].into_iter(),
                )
                .map(|s| format!(" — did you mean {s}:?"))
                .unwrap_or_default();
                Err(SyntaxError::new(
                    span,
                    format!(
                        "unknown field \"{other}:\"{hint} (fields are title:, summary:, content:, entity:, kind:)"
                    ),
                ))
            }
        }
    }
}

fn contains_only_negation(expr: &Expr) -> bool {
    matches!(expr, Expr::Not(_))
}

fn text_expr(
    raw: &str,
    prefix: bool,
    fields: FieldMask,
    span: Range<usize>,
) -> Result<Expr, SyntaxError> {
    let words = fold_words(raw);
    if words.is_empty() {
        // The operators of other search syntaxes are the likeliest of these.
        let message = match raw {
            "||" | "|" => format!("`{raw}` is not an operator: write OR between terms"),
            "&&" | "&" => {
                format!("`{raw}` is not an operator: write AND between terms, or just a space")
            }
            "-" | "!" => {
                format!("`{raw}` is not an operator: write NOT before a term to leave it out")
            }
            _ => format!("{raw:?} has no letters or digits to match"),
        };
        return Err(SyntaxError::new(span, message));
    }
    if prefix && words.last().is_some_and(|w| w.chars().count() < 2) {
        return Err(SyntaxError::new(
            span,
            "a prefix needs at least 2 letters before '*'",
        ));
    }
    Ok(Expr::Text {
        words,
        prefix,
        fields,
        span,
    })
}

impl Expr {
    /// A short label for explanations: `troops`, `deploy*`, `"armed forces"`.
    pub fn label(&self) -> String {
        let scope = |fields: FieldMask| -> String {
            Field::ALL
                .into_iter()
                .find(|f| fields == f.bit())
                .map(|f| format!("{}:", f.name()))
                .unwrap_or_default()
        };
        match self {
            Expr::Text {
                words,
                prefix,
                fields,
                ..
            } => {
                let star = if *prefix { "*" } else { "" };
                if words.len() == 1 {
                    format!("{}{}{star}", scope(*fields), words[0])
                } else {
                    format!("{}\"{}\"{star}", scope(*fields), words.join(" "))
                }
            }
            Expr::Regex {
                pattern, fields, ..
            } => format!("{}/{pattern}/", scope(*fields)),
            Expr::Entity { name, fields, .. } => format!("{}entity:\"{name}\"", scope(*fields)),
            Expr::Kind {
                kind, min, fields, ..
            } => {
                if *min > 1 {
                    format!("{}kind:{kind}>={min}", scope(*fields))
                } else {
                    format!("{}kind:{kind}", scope(*fields))
                }
            }
            Expr::And(_) | Expr::Or(_) | Expr::Not(_) | Expr::Near(..) => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    /// Each warning of `query` as the text it points at and its message.
    fn warnings(query: &str) -> Vec<(&str, String)> {
        super::lint(query)
            .into_iter()
            .map(|w| (&query[w.span], w.message))
            .collect()
    }

    #[test]
    fn lowercase_operators_are_reported_where_they_stand() {
        let found = warnings("sanctions or embargo and not Russia");
        let at: Vec<&str> = found.iter().map(|(at, _)| *at).collect();
        assert_eq!(at, ["or", "and", "not"]);
        assert!(found[0].1.contains("(OR)"), "{}", found[0].1);
        assert!(found[0].1.contains("\"or\""), "{}", found[0].1);
        assert!(found[2].1.contains("(NOT)"), "{}", found[2].1);
        let mixed = warnings("troops Or soldiers");
        assert_eq!(mixed.len(), 1);
        assert!(mixed[0].1.starts_with("`Or` is looked for as a word"));
    }

    #[test]
    fn lowercase_near_is_reported_with_what_it_looks_for() {
        let found = warnings("troops near/5 deploy* AND border near checkpoint");
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].0, "near/5");
        assert!(found[0].1.contains("\"near 5\""), "{}", found[0].1);
        assert!(found[0].1.contains("(NEAR/5)"), "{}", found[0].1);
        assert_eq!(found[1].0, "near");
        assert!(found[1].1.contains("NEAR or NEAR/n"), "{}", found[1].1);
        assert_eq!(warnings("troops Near/12 deploy*")[0].0, "Near/12");
    }

    #[test]
    fn operators_of_other_search_syntaxes_are_reported() {
        let found = warnings("troops -exercise");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "-exercise");
        assert!(found[0].1.contains("write NOT exercise"), "{}", found[0].1);
        assert!(
            warnings("troops -\"live fire\"").is_empty(),
            "a quoted phrase is meant"
        );
        let found = warnings("troops|soldiers border");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "troops|soldiers");
        assert!(found[0].1.contains("\"troops soldiers\""), "{}", found[0].1);
        assert!(found[0].1.contains("write OR"), "{}", found[0].1);
        // Where they make no word at all, they are errors that say what to write.
        for (query, at, fix) in [
            ("troops || soldiers", "||", "write OR"),
            ("troops | soldiers", "|", "write OR"),
            ("troops && border", "&&", "write AND"),
            ("troops - exercise", "-", "write NOT"),
        ] {
            let error = super::parse(query).expect_err(query);
            assert_eq!(&query[error.span.clone()], at, "{query}");
            assert!(error.message.contains(fix), "{query}: {}", error.message);
        }
    }

    #[test]
    fn regex_parts_the_folded_text_never_has_are_reported_where_they_stand() {
        for (query, at, fix) in [
            ("/Troops/", "T", "write `t`"),
            ("troops AND /sélestat/", "é", "write `e`"),
            ("/[A-Z]+ troops/", "[A-Z]", "write it in lowercase"),
            ("/52\\.3 per cent/", "\\.", "match a space"),
            ("/troops\\n/", "\\n", "match a space"),
            ("/e-mail/", "-", "match a space"),
            // A slash, written `\\/` in a query, is punctuation too.
            ("/a\\/b\\/Troops/", "\\/", "match a space"),
            ("/troops|Soldiers/", "S", "write `s`"),
            // Ignoring case does not bring accents back.
            ("/(?i)Sélestat/", "é", "write `e`"),
        ] {
            let found = warnings(query);
            assert_eq!(found.len(), 1, "{query}: {found:?}");
            assert_eq!(found[0].0, at, "{query}");
            assert!(
                found[0].1.contains("never matches"),
                "{query}: {}",
                found[0].1
            );
            assert!(found[0].1.contains(fix), "{query}: {}", found[0].1);
        }
        for query in [
            "/troops \\d+/",
            "/(?i)Troops/",
            "/[a-zA-Z]+/",
            "/[^A-Z]/",
            "/\\btroops\\b/",
            "/ u s troops /",
            "/москва/",
        ] {
            assert_eq!(warnings(query), [], "{query}");
        }
    }

    #[test]
    fn what_is_meant_is_not_reported() {
        for query in [
            "troops OR soldiers AND NOT exercise",
            "troops NEAR/5 deploy* OR (border NEAR checkpoint)",
            "\"or\" AND \"near 5\" AND \"and\"",
            "ordinary notably nearby android",
            "or* AND troops",
            "title:troops AND entity:\"Not Real\" AND kind:country",
            "well-known e-mail AT&T",
            "/a|b/ AND troops",
        ] {
            assert_eq!(warnings(query), [], "{query}");
        }
        assert_eq!(
            warnings("troops (or"),
            [],
            "a query that does not parse has its error instead"
        );
    }

    use super::*;

    fn err(src: &str) -> (String, String) {
        let e = parse(src).unwrap_err();
        let at = src.get(e.span.clone()).unwrap_or("<end>").to_string();
        (e.message, at)
    }

    fn words(e: &Expr) -> String {
        match e {
            Expr::Text { .. } | Expr::Regex { .. } | Expr::Entity { .. } | Expr::Kind { .. } => {
                e.label()
            }
            Expr::And(c) => format!("AND({})", c.iter().map(words).collect::<Vec<_>>().join(",")),
            Expr::Or(c) => format!("OR({})", c.iter().map(words).collect::<Vec<_>>().join(",")),
            Expr::Not(c) => format!("NOT({})", words(c)),
            Expr::Near(a, b, n) => format!("NEAR{n}({},{})", words(a), words(b)),
        }
    }

    #[test]
    fn precedence_not_and_or_near() {
        let e = parse("a b OR NOT c AND d").unwrap();
        assert_eq!(words(&e), "OR(AND(a,b),AND(NOT(c),d))");
        let e = parse("NOT a NEAR/3 b").unwrap_err();
        assert!(e.message.contains("at least one term"), "{e:?}");
        let e = parse("x AND NOT a NEAR/3 b").unwrap();
        assert_eq!(words(&e), "AND(x,NOT(NEAR3(a,b)))");
        let e = parse(r#"(troops OR soldiers) NEAR/12 deploy* AND kind:country>=2"#).unwrap();
        assert_eq!(
            words(&e),
            "AND(NEAR12(OR(troops,soldiers),deploy*),kind:country>=2)"
        );
    }

    #[test]
    fn atoms_parse() {
        let e = parse(
            r#"title:"EU summit" entity:"North Korea" content:(a OR bo*) /\d+ troops/ kind:org"#,
        )
        .unwrap();
        assert_eq!(
            words(&e),
            r#"AND(title:"eu summit",entity:"North Korea",OR(content:a,content:bo*),/\d+ troops/,kind:org)"#
        );
        // Words with inner punctuation become phrases of their tokens.
        assert_eq!(
            words(&parse("U.S. Moscow-Pyongyang").unwrap()),
            r#"AND("u s","moscow pyongyang")"#
        );
        assert_eq!(
            words(&parse("Sélestat NEAR x").unwrap()),
            "NEAR10(selestat,x)"
        );
    }

    #[test]
    fn located_errors() {
        assert_eq!(
            err("troops AND NOT"),
            ("expected a term after NOT".into(), "<end>".into())
        );
        assert_eq!(
            err("(troops OR soldiers"),
            (
                "unbalanced parenthesis opened here: expected ')'".into(),
                "(".into()
            )
        );
        assert_eq!(
            err("troops NEAR/0 deploy"),
            (
                "NEAR needs a distance between 1 and 1000, as in NEAR/5".into(),
                "NEAR/0".into()
            )
        );
        assert_eq!(err("a NEAR/5000 b").1, "NEAR/5000");
        assert_eq!(
            err("troops)").0,
            "unbalanced parenthesis: nothing to close here"
        );
        assert_eq!(
            err("\"open phrase").0,
            "unterminated phrase: this quote is never closed"
        );
        assert_eq!(err("a OR").0, "expected a term after OR");
        assert!(
            err("a AND )")
                .0
                .starts_with("expected a term after AND, found ')'")
        );
        assert_eq!(err("/(unclosed/").1, "/(unclosed/");
        assert!(err("/(unclosed/").0.starts_with("invalid regex"));
        assert!(err("titel:x").0.contains("did you mean title:?"));
        assert_eq!(
            err("a*").0.as_str(),
            "a prefix needs at least 2 letters before '*'"
        );
        assert_eq!(err("  ").0, "empty query: expected a term");
        assert!(err("NOT fisheries").0.contains("almost every item"));
        assert_eq!(err("kind:country>=0").1, "0");
        assert!(err("title:summary:x").0.contains("never match"));
        assert_eq!(
            err("a NEAR NOT b").0,
            "NEAR needs terms that occur in the text on both sides; move NOT outside the NEAR"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let src = format!("{}a{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(err(&src).0.contains("nests deeper"));
        let src = "NOT ".repeat(10_000) + "a";
        let _ = parse(&src);
    }
}
