//! `newswatch match`: a dry run that explains and touches no state.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{Route, Sandbox, TestServer, builtin_rules, fixture_feed, stderr, world_server};

fn fixture(path: &str) -> String {
    format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs newswatch in `sandbox` with `args` and `input` on stdin.
fn run_with_stdin(sandbox: &Sandbox, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = sandbox
        .command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn explains_which_rules_fire_on_an_article_file() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&builtin_rules());
    let out = sandbox.run(&["match", &fixture("articles/troops-article.txt")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("✔ troop-deployment (high) — Foreign troops deployed"),
        "{text}"
    );
    assert!(!text.contains("✔ eu-summit"), "{text}");
    assert!(text.contains("\"fight alongside\""), "{text}");
    assert!(text.contains("entities: "), "{text}");
    assert!(text.contains("North Korea (country)"), "{text}");
    assert!(
        text.ends_with(
            "1 item, 1 matched\n  troop-deployment  1 (100 %)\n  eu-summit         0 (0 %)\n"
        ),
        "{text}"
    );
    assert!(
        !sandbox.path("state").exists(),
        "match must not create state"
    );

    let out = sandbox.run(&["match", &fixture("articles/mountain-summit.txt")]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 item, 0 matched"));
}

#[test]
fn an_article_on_stdin_is_bounded_and_need_not_be_utf8() {
    let sandbox = Sandbox::new();
    // (The sandbox's config ends inside its [fetch] table.)
    sandbox.write_config("max_bytes = 2000\n");
    let out = run_with_stdin(&sandbox, &["match", "-", "--rule", "troops"], &[b'a'; 5000]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the article on stdin is larger than the 2000-byte limit"),
        "{}",
        stderr(&out)
    );
    // Latin-1 bytes: the words around them still match.
    let out = run_with_stdin(
        &sandbox,
        &["match", "-", "--rule", "troops"],
        b"Troops in Z\xfcrich\nTroops arrived.",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 item, 1 matched"));
}

#[test]
fn reads_an_article_from_stdin_and_tries_a_query() {
    let sandbox = Sandbox::new();
    sandbox.write_config("");
    let article = std::fs::read(fixture("articles/mountain-summit.txt")).unwrap();
    let out = run_with_stdin(
        &sandbox,
        &["match", "-", "--rule", "summit NEAR/8 walkers", "--json"],
        &article,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["title"], "Record crowds on the summit of Snowdon");
    let hits = lines[0]["matches"][0]["hits"].as_array().unwrap();
    let terms: Vec<&str> = hits.iter().map(|h| h["term"].as_str().unwrap()).collect();
    assert!(
        terms.contains(&"summit") && terms.contains(&"walkers"),
        "{terms:?}"
    );
    assert_eq!(hits[0]["field"], "content");

    // A lowercase operator is a warning with a caret under it; the query
    // still runs, with the word it asked for.
    let out = run_with_stdin(
        &sandbox,
        &["match", "-", "--rule", "summit or walkers"],
        &article,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "warning: `or` is looked for as a word: operators are written in capitals (OR)"
        ) && err.contains("  summit or walkers\n         ^^\n"),
        "{err}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 item, 0 matched"),
        "the article has no \"or\": {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // An invalid query is bad usage: exit status 2.
    let out = sandbox.run(&["match", "-", "--rule", "troops AND NOT"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("expected a term after NOT") && err.contains("troops AND NOT\n"),
        "{err}"
    );
}

#[test]
fn several_queries_are_compared_side_by_side() {
    let sandbox = Sandbox::new();
    sandbox.write_config("");
    let article = std::fs::read(fixture("articles/mountain-summit.txt")).unwrap();
    let out = run_with_stdin(
        &sandbox,
        &[
            "match",
            "-",
            "--rule",
            "summit",
            "--rule",
            "summit AND NOT walkers",
            "--rule",
            "troops",
        ],
        &article,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("✔ query-1 (medium) — summit\n"), "{text}");
    assert!(!text.contains("✔ query-2"), "{text}");
    assert!(
        text.ends_with(
            "1 item, 1 matched\n  query-1  1 (100 %)\n  query-2  0 (0 %)\n  query-3  0 (0 %)\n"
        ),
        "{text}"
    );

    // Every broken query is reported at once, each with its caret.
    let out = run_with_stdin(
        &sandbox,
        &[
            "match",
            "-",
            "--rule",
            "summit AND NOT",
            "--rule",
            "x NEAR/0 y",
        ],
        &article,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("invalid query (query-1): expected a term after NOT\n  summit AND NOT\n")
            && err.contains("invalid query (query-2): NEAR needs a distance between 1 and 1000")
            && err.contains("  x NEAR/0 y\n    ^^^^^^"),
        "{err}"
    );
}

#[test]
fn runs_over_a_feed_url_and_replays_stored_history() {
    let server = world_server();
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "[[feeds]]\nurl = \"{}\"\n\n{}",
        server.url("/world.xml"),
        builtin_rules()
    ));

    let out = sandbox.run(&["match", &server.url("/world.xml"), "--all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("6 items, 2 matched"), "{text}");
    // Then how many items each configured rule fired on.
    assert!(
        text.ends_with(
            "6 items, 2 matched\n  troop-deployment  1 (17 %)\n  eu-summit         1 (17 %)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("Scout troops sent") && text.contains("no rule fires"),
        "{text}"
    );

    // Nothing stored yet: replay finds nothing.
    let out = sandbox.run(&["match", "--since", "7d", "--rule", "summit"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 items, 0 matched"));

    // After a poll, a new rule replayed over history finds what it would have caught.
    assert!(sandbox.run(&["once"]).status.success());
    let out = sandbox.run(&["match", "--since", "7d", "--rule", "summit", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut titles: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["title"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    titles.sort();
    assert_eq!(
        titles,
        [
            "Climbers reach the summit of Mont Blanc after a week of storms",
            "EU leaders meet in Brussels for summit on Ukraine financing"
        ]
    );
}

#[test]
fn shadow_rules_are_logged_but_marked() {
    let sandbox = Sandbox::new();
    let feed = sandbox.path("world.xml");
    std::fs::write(&feed, fixture_feed("world-news.xml")).unwrap();
    sandbox.write_config(&format!(
        "[[feeds]]\nurl = \"{}\"\n\n[[rules]]\nid = \"summits\"\nquery = 'summit'\nshadow = true\nseverity = \"critical\"\n",
        feed.display()
    ));
    assert!(sandbox.run(&["once"]).status.success());
    let alerts = sandbox.alerts();
    assert_eq!(alerts.len(), 2);
    assert!(alerts.iter().all(|a| a["shadow"] == true));
}

/// A feed that names no encoding, served as ISO-8859-1 in its `Content-Type`:
/// both `match` and a poll read it in that charset, so its words match and its
/// alert carries the title as written.
#[test]
fn a_feed_served_with_a_charset_is_read_in_it() {
    // Dated an hour ago: a first poll alerts on recent items only.
    let date = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc2822();
    let body: Vec<u8> = [
        &b"<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Lokal</title>"[..],
        b"<item><guid>z1</guid><title>Gipfel in Z\xfcrich: Au\xdfenminister beraten</title>",
        b"<pubDate>",
        date.as_bytes(),
        b"</pubDate><description>Die Minister trafen sich.</description></item></channel></rss>",
    ]
    .concat();
    assert!(std::str::from_utf8(&body).is_err(), "the body is not UTF-8");
    let server = TestServer::start();
    server.route(
        "/latin1.xml",
        Route::Raw(std::sync::Arc::new(move |stream| {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml; charset=\"ISO-8859-1\"\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(&body)?;
            stream.flush()
        })),
    );
    let title = "Gipfel in Zürich: Außenminister beraten";
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "[[feeds]]\nurl = \"{}\"\n\n[[rules]]\nid = \"zurich\"\nquery = 'title:\"gipfel in zürich\"'\n",
        server.url("/latin1.xml")
    ));

    let out = sandbox.run(&["match", &server.url("/latin1.xml"), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["title"], title, "{line}");

    assert!(sandbox.run(&["once"]).status.success());
    let alerts = sandbox.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["item"]["title"], title, "{}", alerts[0]);
}

#[test]
fn reads_a_feed_from_a_pipe_as_process_substitution_gives_it() {
    // `newswatch match <(curl -s …)` hands over a pipe's path: `match`
    // reads it to its end (the daemon's feeds must be regular files).
    let sandbox = Sandbox::new();
    sandbox.write_config(&builtin_rules());
    let fifo = sandbox.path("feed.pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let path = fifo.clone();
    let writer = std::thread::spawn(move || {
        std::fs::write(path, fixture_feed("world-news.xml")).unwrap();
    });
    let out = sandbox.run(&["match", fifo.to_str().unwrap()]);
    writer.join().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("6 items, 2 matched"), "{text}");
}
