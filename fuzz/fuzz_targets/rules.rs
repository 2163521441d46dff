//! Rule queries: any string → parse → compile → evaluate on fixed documents.
//!
//! A query's warnings point into it. A query is either refused with a
//! located error (a span on character boundaries of the query, a message) or
//! compiled; a compiled rule must
//! agree with the reference interpreter on every document, and its hits must
//! point into the text they explain.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use newswatch::document::Document;
use newswatch::entities::Gazetteer;
use newswatch::rules::{self, interpret};

static GAZETTEER: LazyLock<Gazetteer> = LazyLock::new(Gazetteer::builtin);

/// Documents with words, phrases, entities of several kinds, guessed persons,
/// accents, full-width letters and punctuation for queries to find.
static DOCUMENTS: LazyLock<Vec<Document>> = LazyLock::new(|| {
    let article = include_str!("../../tests/fixtures/articles/troops-article.txt");
    let (title, body) = article.split_once('\n').unwrap_or((article, ""));
    vec![
        Document::new(title, "", body, &GAZETTEER),
        Document::new(
            "EU summit in Sélestat: ＲＵＳＳＩＡ and the U.S. talk",
            "President Ana Costa said troops were deployed; NATO and the WHO disagree.",
            "Zelenskyy met Macron in Kyiv — 2024 redeploy, Moscow-Pyongyang ties, the e-mail said (again).",
            &GAZETTEER,
        ),
        Document::new("", "", "", &GAZETTEER),
    ]
});

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    // Warnings point at the query's own characters, like errors do.
    for warning in rules::lint(query) {
        assert!(!warning.message.is_empty(), "{query:?}: empty warning");
        assert!(
            query.get(warning.span.clone()).is_some_and(|s| !s.is_empty()),
            "{query:?}: warning span {:?} is not a place in the query",
            warning.span
        );
    }
    let expr = match rules::parse(query) {
        Ok(expr) => expr,
        Err(error) => {
            assert!(!error.message.is_empty(), "{query:?}: empty message");
            assert!(
                error.span.start <= error.span.end && query.is_char_boundary(error.span.start),
                "{query:?}: span {:?} is not a place in the query",
                error.span
            );
            return;
        }
    };
    let set = match rules::compile([("fuzz", query)], &GAZETTEER) {
        Ok(set) => set,
        Err(errors) => {
            assert!(!errors.is_empty() && errors.iter().all(|e| !e.error.message.is_empty()));
            return;
        }
    };
    for document in DOCUMENTS.iter() {
        let matches = set.evaluate(document);
        let reference = interpret::matches(&expr, document, &GAZETTEER);
        assert_eq!(
            !matches.is_empty(),
            reference,
            "{query:?}: compiled and interpreted rule disagree"
        );
        for hit in matches.iter().flat_map(|m| &m.hits) {
            let original = &document.field(hit.field).original;
            assert!(
                hit.range.start < hit.range.end && original.get(hit.range.clone()).is_some(),
                "{query:?}: hit {hit:?} outside its field"
            );
        }
    }
});
