//! `import`, `export`, `feeds add` and `feeds remove` edit the user's config
//! file, keep its comments, and round-trip through OPML.

mod common;

use common::{Sandbox, stderr};

const COMMENTED: &str = "# my newswatch config\n\n[defaults]\ninterval = \"15m\" # polite\n\n\
# --- feeds ---\n[[feeds]]\nurl = \"https://existing.example.org/rss\"\nname = \"Existing\"\n";

fn sandbox() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.write_config(COMMENTED);
    sandbox
}

#[test]
fn opml_round_trip_through_the_config_file() {
    let sandbox = sandbox();
    let fixture = format!(
        "{}/tests/fixtures/opml/reader-export.opml",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = sandbox.run(&["import", &fixture]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("imported "), "{stdout}");
    let text = std::fs::read_to_string(sandbox.config_path()).unwrap();
    assert!(
        text.contains("# --- feeds ---") && text.contains("interval = \"15m\" # polite"),
        "{text}"
    );
    let out = sandbox.run(&["check"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Importing again adds nothing.
    let out = sandbox.run(&["import", &fixture]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("imported 0 feeds"));

    // Export, then import the export into a fresh config: the same feeds.
    let exported = sandbox.path("export.opml");
    let out = sandbox.run(&["export", exported.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let fresh = Sandbox::new();
    fresh.write_config("");
    let out = fresh.run(&["import", exported.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let urls = |s: &Sandbox| {
        let out = s.run(&["export"]);
        let mut urls: Vec<String> = newswatch::opml::parse_opml(&out.stdout)
            .unwrap()
            .into_iter()
            .map(|f| f.url)
            .collect();
        urls.sort();
        urls
    };
    assert_eq!(urls(&sandbox), urls(&fresh));
    assert!(urls(&sandbox).len() >= 5);
}

#[test]
fn feeds_add_and_remove_keep_comments_and_validate() {
    let sandbox = sandbox();
    let out = sandbox.run(&[
        "feeds",
        "add",
        "https://new.example.org/feed.xml",
        "--name",
        "New",
        "--tag",
        "world",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(sandbox.config_path()).unwrap();
    assert!(
        text.contains("url = \"https://new.example.org/feed.xml\""),
        "{text}"
    );
    assert!(text.contains("# my newswatch config"));

    let out = sandbox.run(&["feeds", "add", "https://new.example.org/feed.xml"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("already configured"));

    // An invalid URL is refused and the file is left alone.
    let before = std::fs::read_to_string(sandbox.config_path()).unwrap();
    let out = sandbox.run(&["feeds", "add", "gopher://old.example.org/"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("would not be valid"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.config_path()).unwrap(),
        before
    );

    let out = sandbox.run(&["feeds", "remove", "https://existing.example.org/rss"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(sandbox.config_path()).unwrap();
    assert!(
        !text.contains("existing.example.org") && text.contains("new.example.org"),
        "{text}"
    );
    let out = sandbox.run(&["feeds", "remove", "https://nowhere.example.org/"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn malformed_opml_is_reported_with_a_position() {
    let sandbox = sandbox();
    let fixture = format!(
        "{}/tests/fixtures/opml/malformed.opml",
        env!("CARGO_MANIFEST_DIR")
    );
    let before = std::fs::read_to_string(sandbox.config_path()).unwrap();
    let out = sandbox.run(&["import", &fixture]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not usable OPML"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.config_path()).unwrap(),
        before
    );

    // A file without end is cut off at the cap, not read until memory runs out.
    let out = sandbox.run(&["import", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot read /dev/zero: larger than 64 MiB"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.config_path()).unwrap(),
        before
    );
}
