//! Feed bytes → items → documents, as a poll does with a fetched body:
//! `parse_feed`, then for every item `Document::new`, the story signature and
//! the example configuration's rules. Every item has a key, and a link, if
//! it has one, is not empty and has no tracking parameter left.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use newswatch::config::{BUILTIN_CONFIG, Config, Origin};
use newswatch::document::Document;
use newswatch::feed::{PARSER_CRASHED, canonical_link, parse_feed};
use newswatch::stories::signature;

static CONFIG: LazyLock<Config> = LazyLock::new(|| {
    Config::from_str(BUILTIN_CONFIG, Origin::Builtin).expect("the example configuration is valid")
});

fuzz_target!(|data: &[u8]| {
    let parsed = match parse_feed(data, "https://example.org/feed.xml") {
        Ok(parsed) => parsed,
        Err(error) => {
            assert!(!error.cause.is_empty(), "an error without a cause");
            // A panic of the parser is caught, but is still a finding.
            assert!(!error.cause.starts_with(PARSER_CRASHED), "{error}");
            return;
        }
    };
    for item in &parsed.items {
        assert!(!item.key.is_empty(), "an item without a key");
        if let Some(link) = &item.link {
            assert!(!link.is_empty(), "an empty link");
            assert_eq!(canonical_link(link), link.as_str(), "a link kept a tracking parameter");
        }
        let document = Document::new(&item.title, &item.summary, &item.content, &CONFIG.gazetteer);
        let _ = signature(&document, &CONFIG.gazetteer);
        let _ = CONFIG.rules.evaluate(&document);
    }
});
