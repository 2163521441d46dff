//! End to end: the real binary, a real HTTP server on 127.0.0.1, a real SQLite
//! state, the built-in rules. Feed → alert log, exactly the intended alerts.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Route, Sandbox, TestServer, builtin_rules, fixture_feed, stderr, wait_for};

fn alert_summary(alerts: &[serde_json::Value]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = alerts
        .iter()
        .map(|a| {
            (
                a["rule"].as_str().unwrap().to_string(),
                a["item"]["key"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn once_alerts_exactly_the_intended_items_and_remembers_them() {
    let server = TestServer::start();
    server.route(
        "/world.xml",
        Route::Feed {
            body: fixture_feed("world-news.xml"),
            etag: Some("\"w1\"".into()),
        },
    );
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "[[feeds]]\nurl = \"{}\"\nname = \"Test World Desk\"\n\n{}",
        server.url("/world.xml"),
        builtin_rules()
    ));

    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let alerts = sandbox.alerts();
    assert_eq!(
        alert_summary(&alerts),
        [
            ("eu-summit".to_string(), "wn-002".to_string()),
            ("troop-deployment".to_string(), "wn-001".to_string())
        ],
        "{alerts:#?}"
    );

    // The line format of the contract.
    let troop = alerts
        .iter()
        .find(|a| a["rule"] == "troop-deployment")
        .unwrap();
    assert_eq!(troop["v"], 1);
    assert_eq!(troop["id"].as_str().unwrap().len(), 26);
    assert!(troop["ts"].as_str().unwrap().ends_with('Z'));
    assert_eq!(troop["title"], "Foreign troops deployed");
    assert_eq!(troop["severity"], "high");
    assert_eq!(
        troop["item"]["link"],
        "https://news.example.org/world/wn-001"
    );
    assert_eq!(troop["item"]["feed"]["url"], server.url("/world.xml"));
    assert_eq!(troop["item"]["feed"]["name"], "Test World Desk");
    assert_eq!(troop["sources"], 1);
    assert!(troop["item"]["published"].as_str().unwrap().ends_with('Z'));
    let matches = troop["matches"].as_array().unwrap();
    let terms: Vec<&str> = matches
        .iter()
        .map(|m| m["term"].as_str().unwrap())
        .collect();
    assert!(terms.contains(&"soldiers"), "{terms:?}");
    assert!(
        matches.iter().any(|m| m["snippet"]
            .as_str()
            .unwrap()
            .contains("sent several thousand")),
        "{matches:#?}"
    );
    let entities: Vec<&str> = troop["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for country in ["North Korea", "Russia", "Ukraine"] {
        assert!(entities.contains(&country), "{entities:?}");
    }
    // HTML was turned into text: no tags or script in snippets.
    let raw_log = std::fs::read_to_string(sandbox.log_path()).unwrap();
    assert!(
        !raw_log.contains("<p>") && !raw_log.contains("trackArticle"),
        "{raw_log}"
    );
    assert!(raw_log.ends_with('\n') && raw_log.lines().count() == 2);

    // Second run: 304 via ETag, nothing new.
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sandbox.alerts().len(), 2);
    let requests = server.requests("/world.xml");
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1].headers.get("if-none-match").map(String::as_str),
        Some("\"w1\"")
    );
    let ua = requests[0].headers.get("user-agent").unwrap();
    assert!(
        ua.starts_with(&format!("newswatch/{}", env!("CARGO_PKG_VERSION"))),
        "{ua}"
    );

    // The log deleted, the feed changed (no 304): the state still remembers.
    std::fs::remove_file(sandbox.log_path()).unwrap();
    server.route(
        "/world.xml",
        Route::Feed {
            body: fixture_feed("world-news.xml"),
            etag: Some("\"w2\"".into()),
        },
    );
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(sandbox.alerts().is_empty(), "{:#?}", sandbox.alerts());

    // A new item later: exactly that one alerts.
    server.route(
        "/world.xml",
        Route::Feed {
            body: fixture_feed("world-news-later.xml"),
            etag: Some("\"w3\"".into()),
        },
    );
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        alert_summary(&sandbox.alerts()),
        [("troop-deployment".to_string(), "wn-007".to_string())]
    );
}

#[test]
fn first_fetch_skips_the_backlog_outside_catch_up() {
    let server = TestServer::start();
    server.route(
        "/backlog.xml",
        Route::Feed {
            body: fixture_feed("backlog.xml"),
            etag: None,
        },
    );
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "[defaults]\ncatch_up = \"24h\"\n\n[[feeds]]\nurl = \"{}\"\n\n{}",
        server.url("/backlog.xml"),
        builtin_rules()
    ));
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        alert_summary(&sandbox.alerts()),
        [("troop-deployment".to_string(), "bl-recent".to_string())]
    );

    // catch_up = "0s": a fresh state alerts on nothing from the first fetch.
    let fresh = Sandbox::new();
    fresh.write_config(&format!(
        "[defaults]\ncatch_up = \"0s\"\n\n[[feeds]]\nurl = \"{}\"\n\n{}",
        server.url("/backlog.xml"),
        builtin_rules()
    ));
    let out = fresh.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(fresh.alerts().is_empty());
}

#[test]
fn failing_feeds_do_not_stop_the_others() {
    let server = TestServer::start();
    server.route(
        "/good.xml",
        Route::Feed {
            body: fixture_feed("world-news.xml"),
            etag: None,
        },
    );
    server.route("/error.xml", Route::Status(500));
    server.route(
        "/garbage.xml",
        Route::Garbage(b"\x00\x9f\x92\x96 this is <<< not a feed \xff".to_vec()),
    );
    server.route("/hang.xml", Route::Hang);
    let sandbox = Sandbox::new();
    let feeds: String = ["/error.xml", "/garbage.xml", "/hang.xml", "/good.xml"]
        .iter()
        .map(|p| format!("[[feeds]]\nurl = \"{}\"\n\n", server.url(p)))
        .collect();
    sandbox.write_config(&format!("{feeds}{}", builtin_rules()));

    let started = Instant::now();
    let out = sandbox.run(&["once"]);
    let elapsed = started.elapsed();
    let err = stderr(&out);
    assert!(
        out.status.success(),
        "one feed worked, so once succeeds: {err}"
    );
    assert!(
        elapsed < Duration::from_secs(30),
        "the hanging feed was cut off by the timeout ({elapsed:?})"
    );
    assert_eq!(sandbox.alerts().len(), 2, "{err}");
    assert!(
        err.contains(&format!("feed {}: HTTP 500", server.url("/error.xml"))),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "feed {}: not a readable feed",
            server.url("/garbage.xml")
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("feed {}: timed out", server.url("/hang.xml"))),
        "{err}"
    );
}

#[test]
fn check_reports_broken_rules_with_location_and_caret() {
    let sandbox = Sandbox::new();
    sandbox.write_config(
        "[[rules]]\nid = \"good\"\nquery = 'troops NEAR deploy*'\n\n\
         [[rules]]\nid = \"broken\"\nquery = '(troops OR soldiers AND NOT'\n\n\
         [[rules]]\nid = \"typo\"\nquery = 'troops AND kind:contry>=2'\n",
    );
    let out = sandbox.run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let config = sandbox.config_path().display().to_string();
    // Line numbers count the sandbox's preamble (state, notify and fetch sections).
    assert!(
        err.contains(&format!(
            "{config}:17:37: error: rule \"broken\": expected a term after NOT"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{config}:21:21: error: rule \"typo\": unknown kind \"contry\" — did you mean country?"
        )),
        "{err}"
    );
    assert!(
        err.contains(
            "17 | query = '(troops OR soldiers AND NOT'\n   |                                     ^"
        ),
        "{err}"
    );
    assert!(err.contains("2 errors in configuration"), "{err}");

    sandbox.write_config("[[rules]]\nid = \"good\"\nquery = 'troops NEAR deploy*'\n");
    let out = sandbox.run(&["check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("rules:    1 (good)") && stdout.ends_with("ok\n"),
        "{stdout}"
    );
}

#[test]
fn check_warns_of_operators_written_as_words() {
    let sandbox = Sandbox::new();
    sandbox.write_config(
        "[[rules]]\nid = \"either\"\nquery = 'sanctions or embargo'\n\n\
         [[rules]]\nid = \"close\"\nquery = 'troops near/5 deploy*'\n\n\
         [[rules]]\nid = \"meant\"\nquery = 'troops AND \"or\" AND NOT exercise'\n",
    );
    let out = sandbox.run(&["check"]);
    // Warnings, not errors: the rules are valid and the daemon would run them.
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let config = sandbox.config_path().display().to_string();
    // Line numbers count the sandbox's preamble (state, notify and fetch sections).
    let either = format!(
        "warning:  {config}:13:20: rule \"either\": `or` is looked for as a word: \
         operators are written in capitals (OR)"
    );
    let close = format!(
        "warning:  {config}:17:17: rule \"close\": `near/5` is looked for as the words \"near 5\""
    );
    assert!(stdout.contains(&either), "{stdout}");
    assert!(stdout.contains(&close), "{stdout}");
    assert!(!stdout.contains("rule \"meant\""), "{stdout}");
    assert!(stdout.ends_with("ok\n"), "{stdout}");
    // Reported once, in the report, not also as log lines.
    assert!(!stderr(&out).contains("looked for as"), "{}", stderr(&out));
}

/// Writes an RSS channel "Desk" with `items` to `path`.
fn write_desk(path: &Path, items: &str) {
    std::fs::write(
        path,
        format!("<rss version=\"2.0\"><channel><title>Desk</title>{items}</channel></rss>"),
    )
    .unwrap();
}

/// A config polling the feed at `path` with one rule, `troops`.
fn troops_desk_config(path: &Path) -> String {
    format!(
        "[[feeds]]\nurl = \"{}\"\n\n[[rules]]\nid = \"troops\"\nquery = 'troops'\n",
        path.display()
    )
}

#[test]
fn an_article_republished_under_a_new_guid_alerts_once() {
    let sandbox = Sandbox::new();
    let feed = sandbox.path("desk.xml");
    let date = (chrono::Utc::now() - chrono::Duration::minutes(20)).to_rfc2822();
    let write = |items: &[(&str, &str, &str)]| {
        let items: String = items
            .iter()
            .map(|(guid, title, link)| {
                format!(
                    "<item><guid>{guid}</guid><title>{title}</title><link>{link}</link>\
                     <pubDate>{date}</pubDate><description>Troops were deployed.</description></item>"
                )
            })
            .collect();
        write_desk(&feed, &items);
    };
    sandbox.write_config(&troops_desk_config(&feed));
    let title = "Troops deployed to the border";
    let link = "https://desk.example.org/troops";
    write(&[("v1", title, link)]);
    assert!(sandbox.run(&["once"]).status.success());
    // The same article with a guid that changes on every fetch.
    write(&[("v2", title, link)]);
    let out = sandbox.run(&["once"]);
    assert!(stderr(&out).contains("republished=1"), "{}", stderr(&out));
    // A new article, and an edited title (an update), still alert.
    write(&[
        ("v3", title, link),
        (
            "n1",
            "Troops withdrawn from the border",
            "https://desk.example.org/later",
        ),
        (
            "v4",
            "Troops deployed to the border, officials confirm",
            link,
        ),
    ]);
    assert!(sandbox.run(&["once"]).status.success());
    let mut keys: Vec<String> = sandbox
        .alerts()
        .iter()
        .map(|a| a["item"]["key"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    assert_eq!(keys, ["n1", "v1", "v4"]);
}

#[test]
fn links_tagged_differently_on_each_fetch_alert_once_with_a_clean_link() {
    let sandbox = Sandbox::new();
    let feed = sandbox.path("tagged.xml");
    let date = (chrono::Utc::now() - chrono::Duration::minutes(20)).to_rfc2822();
    // No guids: items are known by their links, which carry a campaign tag
    // that changes on every fetch.
    let write = |fetch: u32| {
        let item = |path: &str, title: &str| {
            format!(
                "<item><title>{title}</title>\
                 <link>https://desk.example.org/{path}?utm_source=rss&amp;utm_campaign=c{fetch}&amp;id=7</link>\
                 <pubDate>{date}</pubDate><description>Troops were deployed.</description></item>"
            )
        };
        let mut items = item("troops", "Troops deployed to the border");
        if fetch == 3 {
            items.push_str(&item("later", "Troops withdrawn"));
        }
        write_desk(&feed, &items);
    };
    sandbox.write_config(&troops_desk_config(&feed));
    for fetch in 1..=3 {
        write(fetch);
        let out = sandbox.run(&["once"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let links: Vec<String> = sandbox
        .alerts()
        .iter()
        .map(|a| a["item"]["link"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        links,
        [
            "https://desk.example.org/troops?id=7",
            "https://desk.example.org/later?id=7"
        ]
    );
}

#[test]
fn a_corrupt_state_file_is_named_once_and_left_alone() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&builtin_rules());
    std::fs::create_dir_all(sandbox.path("state")).unwrap();
    let garbage: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(sandbox.path("state/state.sqlite"), &garbage).unwrap();
    let out = sandbox.run(&["once"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("state.sqlite: file is not a database"),
        "{err}"
    );
    assert_eq!(err.matches("not a database").count(), 1, "{err}");
    // Nothing is overwritten: the file may still be worth rescuing.
    assert_eq!(
        std::fs::read(sandbox.path("state/state.sqlite")).unwrap(),
        garbage
    );
}

#[test]
fn the_builtin_default_config_checks_clean() {
    let sandbox = Sandbox::new();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_newswatch"))
        .arg("check")
        .env("XDG_CONFIG_HOME", sandbox.path("nothing-here"))
        .env("XDG_STATE_HOME", sandbox.path("state"))
        .env_remove("NEWSWATCH_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("<builtin newswatch.toml>"), "{stdout}");
    assert!(stdout.contains("troop-deployment, eu-summit"), "{stdout}");
    assert!(!stdout.contains("warning"), "{stdout}");
}

#[test]
fn run_polls_repeatedly_and_stops_cleanly_on_sigterm() {
    let server = TestServer::start();
    server.route(
        "/world.xml",
        Route::Feed {
            body: fixture_feed("world-news.xml"),
            etag: Some("\"a\"".into()),
        },
    );
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "[[feeds]]\nurl = \"{}\"\ninterval = \"1s\"\n\n{}",
        server.url("/world.xml"),
        builtin_rules()
    ));
    let mut child = sandbox
        .command(&["run"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the first two alerts", Duration::from_secs(20), || {
        sandbox.alerts().len() == 2
    });
    server.route(
        "/world.xml",
        Route::Feed {
            body: fixture_feed("world-news-later.xml"),
            etag: Some("\"b\"".into()),
        },
    );
    wait_for(
        "the alert on the later item",
        Duration::from_secs(20),
        || sandbox.alerts().len() == 3,
    );
    assert!(server.requests("/world.xml").len() >= 2);

    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "newswatch did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(exit.success(), "exit {exit:?}: {err}");
    assert!(
        err.contains("SIGTERM: stopping") && err.contains("stopped"),
        "{err}"
    );
    assert_eq!(sandbox.alerts().len(), 3, "no alert written twice");
}

#[test]
fn reading_commands_neither_create_nor_write_the_state() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&builtin_rules());
    // No state yet: nothing to show, and nothing created.
    for args in [
        &["feeds"][..],
        &["stories"],
        &["match", "--since", "7d", "--rule", "troops"],
    ] {
        let out = sandbox.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    assert!(
        !sandbox.path("state").exists(),
        "a reading command created the state"
    );
    // A state made by a poll, read without being written. (As root the
    // permissions below do not stop writes; the unchanged bytes still show
    // that nothing was written.)
    let feed = sandbox.path("world.xml");
    std::fs::write(&feed, fixture_feed("world-news.xml")).unwrap();
    sandbox.write_config(&format!(
        "[[feeds]]\nurl = \"{}\"\n\n{}",
        feed.display(),
        builtin_rules()
    ));
    assert!(sandbox.run(&["once"]).status.success());
    let state = sandbox.path("state/state.sqlite");
    let before = std::fs::read(&state).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let set_mode = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    set_mode(&state, 0o444);
    set_mode(&sandbox.path("state"), 0o555);
    let outs: Vec<_> = [
        &["feeds"][..],
        &["stories"],
        &["match", "--since", "7d", "--rule", "troops"],
    ]
    .iter()
    .map(|args| (args.to_vec(), sandbox.run(args)))
    .collect();
    set_mode(&sandbox.path("state"), 0o755);
    set_mode(&state, 0o644);
    for (args, out) in &outs {
        assert!(out.status.success(), "{args:?}: {}", stderr(out));
    }
    assert!(
        String::from_utf8_lossy(&outs[2].1.stdout).contains("matched"),
        "{}",
        String::from_utf8_lossy(&outs[2].1.stdout)
    );
    assert_eq!(
        std::fs::read(&state).unwrap(),
        before,
        "the state was written"
    );
}
