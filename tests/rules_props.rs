//! Property tests: the compiled matcher agrees with the reference interpreter.
//!
//! Documents are drawn from a small vocabulary (accents, capitals, country
//! names, demonyms, punctuation) so terms and entities actually occur; queries
//! are random syntax trees rendered to text, with and without parentheses, so
//! the parser's precedence rules decide what they mean. Whatever `parse`
//! makes of a query, `RuleSet::evaluate` must report the rule exactly when
//! `interpret::matches` says it is true.

use std::sync::LazyLock;

use newswatch::document::{Document, Field};
use newswatch::entities::Gazetteer;
use newswatch::rules::{self, Expr, interpret, parse};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

static GAZ: LazyLock<Gazetteer> = LazyLock::new(Gazetteer::builtin);

// ---------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------

/// Words of generated documents. Several fold to the same token, several
/// are entity names, demonyms or linked places, some carry punctuation.
const DOC_WORDS: &[&str] = &[
    "Russia",
    "Russian",
    "russia's",
    "RUSSIA",
    "Ukraine",
    "Ukrainian",
    "Kyiv",
    "North",
    "Korea",
    "Korean",
    "North Korea",
    "North Korean",
    "France",
    "EU",
    "eu",
    "Sélestat",
    "selestat",
    "ZELENSKYY",
    "Zelensky",
    "troops",
    "troop",
    "deploy",
    "deployed",
    "Deployment",
    "redeploy",
    "sent",
    "summit",
    "the",
    "to",
    "in",
    "Moscow-Pyongyang",
    "U.S.",
    "US",
    "us",
    "ＲＵＳＳＩＡ",
    "2024",
    // Titles, capitalised names and attribution: the name heuristic guesses persons.
    "President",
    "Ana",
    "Costa",
    "said",
    "President Ana Costa",
    "Maria Lopes said",
];

const SEPARATORS: &[&str] = &[" ", " ", " ", " ", ", ", ". ", " — ", "\n", " (", ") "];

fn text(max_words: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::sample::select(DOC_WORDS),
            prop::sample::select(SEPARATORS),
        ),
        0..=max_words,
    )
    .prop_map(|words| {
        let mut out = String::new();
        for (word, sep) in words {
            out.push_str(word);
            out.push_str(sep);
        }
        out
    })
}

#[derive(Debug, Clone)]
struct Doc {
    title: String,
    summary: String,
    content: String,
}

impl Doc {
    fn build(&self) -> Document {
        Document::new(&self.title, &self.summary, &self.content, &GAZ)
    }
}

fn doc() -> impl Strategy<Value = Doc> {
    (text(6), text(10), text(24)).prop_map(|(title, summary, content)| Doc {
        title,
        summary,
        content,
    })
}

// ---------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------

/// A query syntax tree, before rendering.
#[derive(Debug, Clone)]
enum Q {
    Atom(String),
    And(Vec<Q>, bool),
    Or(Vec<Q>),
    Not(Box<Q>),
    Near(Box<Q>, Box<Q>, Option<u32>),
    Scope(&'static str, Box<Q>),
    /// Explicit parentheses.
    Group(Box<Q>),
}

const QUERY_WORDS: &[&str] = &[
    "russia",
    "Russian",
    "ukraine",
    "kyiv",
    "north",
    "korea",
    "korean",
    "france",
    "EU",
    "Sélestat",
    "selestat",
    "zelenskyy",
    "ZELENSKY",
    "troops",
    "troop",
    "deploy",
    "deployed",
    "deployment",
    "redeploy",
    "sent",
    "summit",
    "the",
    "s",
    "us",
    "U.S.",
    "pyongyang",
    "2024",
    "absent",
];

const QUERY_PREFIXES: &[&str] = &["rus", "deploy", "tro", "ko", "ze", "ukr", "se", "20", "re"];

const ENTITIES: &[&str] = &[
    "entity:Russia",
    "entity:\"Russia\"",
    "entity:\"North Korea\"",
    "entity:DPRK",
    "entity:Ukraine",
    "entity:France",
    "entity:\"European Union\"",
    "entity:\"United States\"",
    "entity:\"Volodymyr Zelenskyy\"",
    "entity:\"South Korea\"",
];

const REGEXES: &[&str] = &[
    r"/rus\w*/",
    r"/troops? /",
    r"/\bkorea\b/",
    r"/n\w+ k/",
    r"/\d+/",
    r"/ eu /",
];

fn atom() -> impl Strategy<Value = Q> {
    prop_oneof![
        6 => prop::sample::select(QUERY_WORDS).prop_map(|w| Q::Atom(w.to_string())),
        2 => prop::sample::select(QUERY_PREFIXES).prop_map(|w| Q::Atom(format!("{w}*"))),
        3 => (prop::sample::select(QUERY_WORDS), prop::sample::select(QUERY_WORDS))
            .prop_map(|(a, b)| Q::Atom(format!("\"{a} {b}\""))),
        1 => (prop::sample::select(QUERY_WORDS), prop::sample::select(QUERY_PREFIXES))
            .prop_map(|(a, p)| Q::Atom(format!("\"{a} {p}\"*"))),
        2 => prop::sample::select(ENTITIES).prop_map(|e| Q::Atom(e.to_string())),
        2 => (1u32..=3, any::<bool>()).prop_map(|(n, bare)| {
            Q::Atom(if bare && n == 1 { "kind:country".into() } else { format!("kind:country>={n}") })
        }),
        2 => prop::sample::select(&["kind:org", "kind:person", "kind:person>=2", "kind:place"][..])
            .prop_map(|k| Q::Atom(k.to_string())),
        1 => prop::sample::select(REGEXES).prop_map(|r| Q::Atom(r.to_string())),
    ]
}

fn query_tree() -> impl Strategy<Value = Q> {
    atom().prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            3 => (prop::collection::vec(inner.clone(), 2..=3), any::<bool>()).prop_map(|(c, explicit)| Q::And(c, explicit)),
            3 => prop::collection::vec(inner.clone(), 2..=3).prop_map(Q::Or),
            2 => inner.clone().prop_map(|q| Q::Not(Box::new(q))),
            3 => (inner.clone(), inner.clone(), prop::option::weighted(0.8, 1u32..=5))
                .prop_map(|(a, b, n)| Q::Near(Box::new(a), Box::new(b), n)),
            1 => (prop::sample::select(&["title", "summary", "content"][..]), inner.clone())
                .prop_map(|(s, q)| Q::Scope(s, Box::new(q))),
            2 => inner.prop_map(|q| Q::Group(Box::new(q))),
        ]
    })
}

/// Renders a tree. Operands are parenthesized only where `Group` says so, so
/// the parser's precedence decides the meaning of the rest; a scope always
/// wraps its operand in parentheses unless it is an atom.
fn render(q: &Q, out: &mut String) {
    match q {
        Q::Atom(a) => out.push_str(a),
        Q::And(children, explicit) => {
            for (i, c) in children.iter().enumerate() {
                if i > 0 {
                    out.push_str(if *explicit { " AND " } else { " " });
                }
                render(c, out);
            }
        }
        Q::Or(children) => {
            for (i, c) in children.iter().enumerate() {
                if i > 0 {
                    out.push_str(" OR ");
                }
                render(c, out);
            }
        }
        Q::Not(c) => {
            out.push_str("NOT ");
            render(c, out);
        }
        Q::Near(a, b, n) => {
            render(a, out);
            match n {
                Some(n) => out.push_str(&format!(" NEAR/{n} ")),
                None => out.push_str(" NEAR "),
            }
            render(b, out);
        }
        Q::Scope(field, c) => {
            out.push_str(field);
            out.push(':');
            if matches!(**c, Q::Atom(_)) {
                render(c, out);
            } else {
                out.push('(');
                render(c, out);
                out.push(')');
            }
        }
        Q::Group(c) => {
            out.push('(');
            render(c, out);
            out.push(')');
        }
    }
}

fn query() -> impl Strategy<Value = String> {
    query_tree().prop_map(|q| {
        let mut s = String::new();
        render(&q, &mut s);
        s
    })
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

/// Checks every hit of a match: a range of the original text of its field, on
/// character boundaries, with a non-empty label and snippet.
fn check_hits(doc: &Document, m: &rules::RuleMatch) -> Result<(), TestCaseError> {
    for hit in &m.hits {
        let original = &doc.field(hit.field).original;
        prop_assert!(hit.range.start < hit.range.end, "empty hit {hit:?}");
        let word = original.get(hit.range.clone());
        prop_assert!(word.is_some(), "hit {hit:?} outside {original:?}");
        prop_assert!(!hit.term.is_empty());
        prop_assert!(!hit.snippet.is_empty());
    }
    Ok(())
}

fn agree(
    query: &str,
    expr: &Expr,
    doc: &Doc,
    built: &Document,
    fired: bool,
) -> Result<(), TestCaseError> {
    let reference = interpret::matches(expr, built, &GAZ);
    prop_assert_eq!(
        fired,
        reference,
        "query {:?}\nparsed {:?}\ndoc {:#?}\ncompiled says {}, interpreter says {}",
        query,
        expr,
        doc,
        fired,
        reference
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        // Queries the parser rejects are skipped; about a fifth of them are.
        max_global_rejects: 1 << 20,
        // Failures are reported, not written next to the sources.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// One rule at a time: the compiled rule fires iff the interpreter says so.
    #[test]
    fn compiled_agrees_with_interpreter(q in query(), d in doc()) {
        let Ok(expr) = parse(&q) else {
            prop_assume!(false);
            unreachable!();
        };
        let set = match rules::compile([("r", q.as_str())], &GAZ) {
            Ok(set) => set,
            Err(e) => return Err(TestCaseError::fail(format!("{q:?} parses but does not compile: {e:?}"))),
        };
        let built = d.build();
        let matches = set.evaluate(&built);
        prop_assert!(matches.len() <= 1);
        for m in &matches {
            prop_assert_eq!(m.rule, 0);
            check_hits(&built, m)?;
        }
        agree(&q, &expr, &d, &built, !matches.is_empty())?;
    }

    /// Twenty rules compiled together share one automaton and one anchor
    /// index: each rule must still fire exactly when the interpreter says so.
    #[test]
    fn many_rules_agree_with_interpreter(
        queries in prop::collection::vec(query(), 20),
        docs in prop::collection::vec(doc(), 1..=4),
    ) {
        let parsed: Vec<(String, Expr)> = queries
            .iter()
            .filter_map(|q| parse(q).ok().map(|e| (q.clone(), e)))
            .collect();
        prop_assume!(!parsed.is_empty());
        let ids: Vec<String> = (0..parsed.len()).map(|i| format!("rule-{i}")).collect();
        let set = rules::compile(ids.iter().map(String::as_str).zip(parsed.iter().map(|(q, _)| q.as_str())), &GAZ)
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(set.len(), parsed.len());
        for d in &docs {
            let built = d.build();
            let matches = set.evaluate(&built);
            let fired: Vec<usize> = matches.iter().map(|m| m.rule).collect();
            prop_assert!(fired.windows(2).all(|w| w[0] < w[1]), "rules reported in order, once: {fired:?}");
            for m in &matches {
                check_hits(&built, m)?;
            }
            for (i, (q, expr)) in parsed.iter().enumerate() {
                agree(q, expr, d, &built, fired.contains(&i))?;
            }
        }
    }

    /// The same rule alone and among others fires on the same documents.
    #[test]
    fn rule_result_independent_of_neighbours(
        queries in prop::collection::vec(query(), 2..8),
        d in doc(),
    ) {
        let parsed: Vec<&String> = queries.iter().filter(|q| parse(q).is_ok()).collect();
        prop_assume!(!parsed.is_empty());
        let together = rules::compile(parsed.iter().map(|q| ("r", q.as_str())), &GAZ).unwrap();
        let built = d.build();
        let fired: Vec<usize> = together.evaluate(&built).iter().map(|m| m.rule).collect();
        for (i, q) in parsed.iter().enumerate() {
            let alone = rules::compile([("r", q.as_str())], &GAZ).unwrap();
            let alone_fires = !alone.evaluate(&built).is_empty();
            prop_assert_eq!(alone_fires, fired.contains(&i), "{:?} among {:?}", q, parsed);
        }
    }

    /// The parser never panics on arbitrary text.
    #[test]
    fn parse_never_panics(s in ".*") {
        if let Err(e) = parse(&s) {
            prop_assert!(e.span.start <= s.len() + 1, "span {:?} beyond {:?}", e.span, s);
            prop_assert!(!e.message.is_empty());
        }
    }

    /// The parser and compiler never panic on query-like token soup, and
    /// error spans lie within (or just past) the query.
    #[test]
    fn parse_and_compile_never_panic_on_token_soup(
        tokens in prop::collection::vec(
            (
                prop::sample::select(&[
                    "(", ")", "AND", "OR", "NOT", "NEAR", "NEAR/3", "NEAR/0", "NEAR/x", "\"", "\"a b\"",
                    "title:", "summary:", "content:", "entity:", "kind:", "titel:", ":", ">=", ">", "*",
                    "/", "/x/", "/(/", "\\", "troops", "de", "d", "Sélestat", "country", "contry", "2",
                    "0", "101", "\"North Korea\"", "Russia", "é", "\u{301}", "…", "-", ".", "NOTE", "ORx",
                ][..]),
                prop::sample::select(&["", " ", " ", "  ", "\n"][..]),
            ),
            0..14,
        ),
    ) {
        let mut q = String::new();
        for (t, sep) in tokens {
            q.push_str(t);
            q.push_str(sep);
        }
        match parse(&q) {
            Ok(_) => {
                // Must not panic; unknown names and kinds are ordinary errors.
                if let Err(errors) = rules::compile([("r", q.as_str())], &GAZ) {
                    let e = &errors[0].error;
                    prop_assert!(e.span.end <= q.len() + 1, "{:?} in {:?}", e, q);
                }
            }
            Err(e) => {
                prop_assert!(e.span.start <= e.span.end);
                prop_assert!(e.span.end <= q.len() + 1, "{:?} in {:?}", e, q);
            }
        }
    }

    /// Evaluation never panics on arbitrary Unicode, and still agrees with the interpreter.
    #[test]
    fn evaluate_never_panics_on_unicode(
        title in any::<String>(),
        summary in "\\PC{0,60}",
        content in prop::collection::vec(
            prop_oneof![any::<char>().prop_map(String::from), prop::sample::select(DOC_WORDS).prop_map(String::from)],
            0..60,
        ),
    ) {
        static FIXED: LazyLock<Vec<(&'static str, Expr)>> = LazyLock::new(|| {
            [
                "troops",
                "rus*",
                "\"north korea\"",
                "entity:Russia AND NOT summit",
                "kind:country>=2",
                "(troops OR deploy*) NEAR/3 entity:Ukraine",
                r"/rus\w*/ NEAR/2 korea",
                r"title:/\w/",
                "summary:(a OR é OR ab*)",
                "NEAR NEAR/1 NEAR",
            ]
            .into_iter()
            .filter_map(|q| parse(q).ok().map(|e| (q, e)))
            .collect()
        });
        static SET: LazyLock<rules::RuleSet> =
            LazyLock::new(|| rules::compile(FIXED.iter().map(|(q, _)| ("r", *q)), &GAZ).unwrap());
        let content: String = content.concat();
        let d = Doc { title, summary, content };
        let built = d.build();
        let matches = SET.evaluate(&built);
        let fired: Vec<usize> = matches.iter().map(|m| m.rule).collect();
        for m in &matches {
            check_hits(&built, m)?;
        }
        for (i, (q, expr)) in FIXED.iter().enumerate() {
            agree(q, expr, &d, &built, fired.contains(&i))?;
        }
        for field in Field::ALL {
            prop_assert!(built.field(field).folded.starts_with(' '));
        }
    }
}

/// The generators produce queries the parser accepts often enough, and
/// documents on which rules do fire: a guard against properties that hold
/// vacuously.
#[test]
fn generators_are_not_vacuous() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut parsed, mut fired, mut total) = (0, 0, 0);
    for _ in 0..300 {
        let q = query().new_tree(&mut runner).unwrap().current();
        let d = doc().new_tree(&mut runner).unwrap().current();
        total += 1;
        if let Ok(expr) = parse(&q) {
            parsed += 1;
            if interpret::matches(&expr, &d.build(), &GAZ) {
                fired += 1;
            }
        }
    }
    assert!(
        parsed * 2 > total,
        "only {parsed} of {total} generated queries parse"
    );
    assert!(
        fired * 10 > parsed,
        "only {fired} of {parsed} parsed queries ever fire"
    );
}
