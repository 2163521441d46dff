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
    assert_eq!(out.status.code(), Some(2), "bad usage");
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
fn concurrent_adds_keep_every_feed() {
    let sandbox = sandbox();
    let urls: Vec<String> = (0..20)
        .map(|i| format!("https://c{i}.example.org/feed.xml"))
        .collect();
    let children: Vec<_> = urls
        .iter()
        .map(|url| {
            sandbox
                .command(&["feeds", "add", url])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let text = std::fs::read_to_string(sandbox.config_path()).unwrap();
    for url in &urls {
        assert!(text.contains(url.as_str()), "{url} lost:\n{text}");
    }
    assert!(text.contains("https://existing.example.org/rss"), "{text}");
    let left: Vec<_> = std::fs::read_dir(sandbox.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn edits_go_through_a_symlink_and_keep_the_mode() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = sandbox();
    // The config kept elsewhere (a dotfiles repository) and linked.
    let real = sandbox.path("dotfiles/newswatch.toml");
    std::fs::create_dir_all(real.parent().unwrap()).unwrap();
    std::fs::rename(sandbox.config_path(), &real).unwrap();
    std::os::unix::fs::symlink(&real, sandbox.config_path()).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = sandbox.run(&["feeds", "add", "https://linked.example.org/feed.xml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let link = std::fs::symlink_metadata(sandbox.config_path()).unwrap();
    assert!(link.file_type().is_symlink(), "the link was replaced");
    let text = std::fs::read_to_string(&real).unwrap();
    assert!(
        text.contains("https://linked.example.org/feed.xml"),
        "{text}"
    );
    let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);

    // A read-only file is left alone, and says so.
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o444)).unwrap();
    let out = sandbox.run(&["feeds", "remove", "https://linked.example.org/feed.xml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is read-only; nothing written"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&real).unwrap(), text);
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
