//! Inputs the fuzzers (fuzz/, see docs/robustness.md) found to crash, hang or
//! exhaust memory, replayed through the same library functions on stable
//! Rust. Each file under `tests/fixtures/fuzz/<target>/` must now give a
//! sensible result: items or a feed error with a cause, a rule that compiles
//! and agrees with the reference interpreter or a located error, a config or
//! diagnostics that render.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use newswatch::commands::check_summary;
use newswatch::config::{BUILTIN_CONFIG, Config, ConfigError, Origin};
use newswatch::document::Document;
use newswatch::entities::Gazetteer;
use newswatch::feed::{PARSER_CRASHED, html_to_text, parse_feed};
use newswatch::rules::{self, interpret};
use newswatch::stories::signature;

static CONFIG: LazyLock<Config> = LazyLock::new(|| {
    Config::from_str(BUILTIN_CONFIG, Origin::Builtin).expect("the example configuration is valid")
});

static GAZETTEER: LazyLock<&Gazetteer> = LazyLock::new(|| &CONFIG.gazetteer);

/// The documents the `rules` fuzz target evaluates every query on.
static DOCUMENTS: LazyLock<Vec<Document>> = LazyLock::new(|| {
    let article = include_str!("fixtures/articles/troops-article.txt");
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

/// The files of one target's regressions, sorted by name; none when the
/// fuzzer never found a failure in that target.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("a readable fixture");
            (path, bytes)
        })
        .collect()
}

/// Replays one input, panicking on a wrong result.
type Check = fn(&Path, &[u8]);

/// Every input of every target gives a sensible result, each well within a
/// second or two even in a debug build.
#[test]
fn fuzz_findings_stay_fixed() {
    let checks: [(&str, Check); 4] = [
        ("feed", check_feed),
        ("html", check_html),
        ("rules", check_rule),
        ("config", check_config),
    ];
    let mut replayed = 0;
    for (target, check) in checks {
        for (path, bytes) in inputs(target) {
            let start = Instant::now();
            check(&path, &bytes);
            let took = start.elapsed();
            assert!(
                took < Duration::from_secs(2),
                "{} took {took:?}",
                path.display()
            );
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no inputs under tests/fixtures/fuzz/");
}

/// What a poll does with a fetched body: parse, then build each item's
/// document, story signature and rule matches.
fn check_feed(path: &Path, bytes: &[u8]) {
    match parse_feed(bytes, "https://example.org/feed.xml") {
        Ok(parsed) => {
            for item in &parsed.items {
                assert!(
                    !item.key.is_empty(),
                    "{}: an item without a key",
                    path.display()
                );
                let document =
                    Document::new(&item.title, &item.summary, &item.content, &CONFIG.gazetteer);
                let _ = signature(&document, &CONFIG.gazetteer);
                let _ = CONFIG.rules.evaluate(&document);
            }
        }
        // The parser's panics are caught and reported, but every one found
        // is defused before it can happen.
        Err(error) => assert!(
            error.to_string().starts_with("not a readable feed: ")
                && !error.cause.is_empty()
                && !error.cause.starts_with(PARSER_CRASHED),
            "{}: {error}",
            path.display()
        ),
    }
}

/// Plain text without control characters (newlines aside) or whitespace runs.
fn check_html(path: &Path, bytes: &[u8]) {
    let text = html_to_text(&String::from_utf8_lossy(bytes));
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{}: control character in {text:?}",
        path.display()
    );
    assert_eq!(text.trim(), text, "{}", path.display());
    assert!(
        !text.contains("  ") && !text.contains("\n\n"),
        "{}: whitespace run in {text:?}",
        path.display()
    );
}

/// A query compiles and agrees with the reference interpreter, or is refused
/// with a message located in the query.
fn check_rule(path: &Path, bytes: &[u8]) {
    let query = std::str::from_utf8(bytes).expect("rule inputs are UTF-8");
    let expr = match rules::parse(query) {
        Ok(expr) => expr,
        Err(error) => {
            assert!(!error.message.is_empty(), "{}", path.display());
            assert!(
                error.span.start <= error.span.end && query.is_char_boundary(error.span.start),
                "{}: span {:?}",
                path.display(),
                error.span
            );
            return;
        }
    };
    let set = match rules::compile([("fuzz", query)], &GAZETTEER) {
        Ok(set) => set,
        Err(errors) => {
            assert!(errors.iter().all(|e| !e.error.message.is_empty()));
            return;
        }
    };
    for document in DOCUMENTS.iter() {
        let matches = set.evaluate(document);
        assert_eq!(
            !matches.is_empty(),
            interpret::matches(&expr, document, &GAZETTEER),
            "{}: compiled and interpreted rule disagree",
            path.display()
        );
        for hit in matches.iter().flat_map(|m| &m.hits) {
            let original = &document.field(hit.field).original;
            assert!(
                hit.range.start < hit.range.end && original.get(hit.range.clone()).is_some(),
                "{}: hit {hit:?} outside its field",
                path.display()
            );
        }
    }
}

/// What `newswatch check` runs: a valid configuration, or diagnostics that
/// name a line and column and render.
fn check_config(path: &Path, bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).expect("config inputs are UTF-8");
    let origin = Origin::File(PathBuf::from("/nonexistent/newswatch-fuzz/newswatch.toml"));
    match Config::from_str(text, origin) {
        Ok(config) => {
            let _ = check_summary(&config);
        }
        Err(ConfigError::Invalid(diagnostics)) => {
            assert!(!diagnostics.is_empty(), "{}", path.display());
            for d in &diagnostics {
                assert!(!d.message.is_empty() && d.line >= 1 && d.col >= 1, "{d:?}");
            }
            let _ = ConfigError::Invalid(diagnostics).to_string();
        }
        Err(other) => panic!("{}: read no file, yet: {other}", path.display()),
    }
}
