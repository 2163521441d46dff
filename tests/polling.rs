//! Polling behaviour against a local server that simulates publishers:
//! permanent and temporary redirects, 410 Gone, Retry-After, a 5xx streak with
//! feed-down/feed-recovered alerts, a slow host, and `newswatch feeds`.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Route, Sandbox, TestServer, builtin_rules, fixture_feed, stderr};

fn feed_route() -> Route {
    Route::Feed {
        body: fixture_feed("world-news.xml"),
        etag: None,
    }
}

fn config_with_feeds(sandbox: &Sandbox, urls: &[String], extra: &str) {
    let feeds: String = urls
        .iter()
        .map(|u| format!("[[feeds]]\nurl = \"{u}\"\n\n"))
        .collect();
    sandbox.write_config(&format!("{extra}\n{feeds}{}", builtin_rules()));
}

fn feeds_json(sandbox: &Sandbox) -> Vec<serde_json::Value> {
    let out = sandbox.run(&["feeds", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn permanent_redirects_move_the_feed_and_temporary_ones_do_not() {
    let server = TestServer::start();
    server.route(
        "/old.xml",
        Route::Redirect {
            status: 301,
            location: "/new.xml".into(),
        },
    );
    server.route("/new.xml", feed_route());
    server.route(
        "/temp.xml",
        Route::Redirect {
            status: 302,
            location: server.url("/elsewhere.xml"),
        },
    );
    server.route("/elsewhere.xml", feed_route());
    let sandbox = Sandbox::new();
    config_with_feeds(
        &sandbox,
        &[server.url("/old.xml"), server.url("/temp.xml")],
        "",
    );

    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("feed moved permanently"),
        "{}",
        stderr(&out)
    );
    // Both feeds carry the same two stories; the rules' cooldowns let each
    // story alert once, whichever feed brought it first.
    assert_eq!(sandbox.alerts().len(), 2);

    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        server.requests("/old.xml").len(),
        1,
        "the moved feed is fetched at its new address"
    );
    assert_eq!(server.requests("/new.xml").len(), 2);
    assert_eq!(
        server.requests("/temp.xml").len(),
        2,
        "a temporary redirect is asked again"
    );
    assert_eq!(sandbox.alerts().len(), 2, "moving does not re-alert");

    let rows = feeds_json(&sandbox);
    let moved = rows
        .iter()
        .find(|r| r["url"] == server.url("/old.xml"))
        .unwrap();
    assert_eq!(moved["moved_to"], server.url("/new.xml"));
}

#[test]
fn redirect_loops_are_cut_off() {
    let server = TestServer::start();
    server.route(
        "/a.xml",
        Route::Redirect {
            status: 302,
            location: "/b.xml".into(),
        },
    );
    server.route(
        "/b.xml",
        Route::Redirect {
            status: 302,
            location: "/a.xml".into(),
        },
    );
    let sandbox = Sandbox::new();
    config_with_feeds(&sandbox, &[server.url("/a.xml")], "");
    let out = sandbox.run(&["once"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("too many redirects (more than 5"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        server.requests("/a.xml").len() + server.requests("/b.xml").len(),
        6
    );
}

#[test]
fn gone_feeds_are_disabled_until_enabled() {
    let server = TestServer::start();
    server.route("/gone.xml", Route::Status(410));
    server.route("/ok.xml", feed_route());
    let sandbox = Sandbox::new();
    config_with_feeds(
        &sandbox,
        &[server.url("/gone.xml"), server.url("/ok.xml")],
        "",
    );

    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("feed is gone (HTTP 410)"),
        "{}",
        stderr(&out)
    );
    let out = sandbox.run(&["once"]);
    assert!(
        stderr(&out).contains("not polled: HTTP 410 Gone"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        server.requests("/gone.xml").len(),
        1,
        "a gone feed is not asked again"
    );

    let rows = feeds_json(&sandbox);
    assert_eq!(
        rows[0]["url"],
        server.url("/gone.xml"),
        "failing feeds sort first"
    );
    assert_eq!(rows[0]["status"], "disabled");
    assert_eq!(rows[1]["status"], "ok");
    let out = sandbox.run(&["feeds"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.lines().next().unwrap().starts_with("STATUS"),
        "{table}"
    );
    assert!(table.contains("disabled: HTTP 410 Gone"), "{table}");

    let out = sandbox.run(&["feeds", "enable", &server.url("/gone.xml")]);
    assert!(out.status.success(), "{}", stderr(&out));
    sandbox.run(&["once"]);
    assert_eq!(server.requests("/gone.xml").len(), 2);
}

fn run_daemon_for(sandbox: &Sandbox, duration: Duration) -> String {
    let child = sandbox
        .command(&["run"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(duration);
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn retry_after_is_respected() {
    let server = TestServer::start();
    server.route(
        "/busy.xml",
        Route::RetryAfter {
            status: 429,
            seconds: 30,
        },
    );
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "[[feeds]]\nurl = \"{}\"\ninterval = \"1s\"\n",
        server.url("/busy.xml")
    ));
    let log = run_daemon_for(&sandbox, Duration::from_secs(4));
    assert_eq!(server.requests("/busy.xml").len(), 1, "{log}");
    assert!(log.contains("HTTP 429 (retry after 30s)"), "{log}");
}

#[test]
fn failing_feeds_back_off_and_raise_feed_down_then_feed_recovered() {
    let server = TestServer::start();
    server.route("/flaky.xml", Route::Status(503));
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "[defaults]\nfeed_down_after = \"2s\"\n\n[[feeds]]\nurl = \"{}\"\nname = \"Flaky Desk\"\ninterval = \"1s\"\n",
        server.url("/flaky.xml")
    ));
    let log = run_daemon_for(&sandbox, Duration::from_secs(7));
    let requests = server.requests("/flaky.xml");
    // Backoff doubles from the interval: about 0, 2, 4(+…) seconds, not every second.
    assert!(
        (2..=4).contains(&requests.len()),
        "{} requests: {log}",
        requests.len()
    );
    let gaps: Vec<Duration> = requests.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps.windows(2).all(|g| g[1] > g[0]), "gaps grow: {gaps:?}");
    let alerts = sandbox.alerts();
    assert_eq!(
        alerts.len(),
        1,
        "one feed-down alert, not one per failure: {alerts:#?}"
    );
    assert_eq!(alerts[0]["rule"], "feed-down");
    let text = alerts[0]["item"]["title"].as_str().unwrap();
    assert!(
        text.starts_with("Flaky Desk has failed since") && text.contains("HTTP 503"),
        "{text}"
    );

    server.route("/flaky.xml", feed_route());
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let alerts = sandbox.alerts();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[1]["rule"], "feed-recovered");
    let out = sandbox.run(&["once"]);
    assert!(out.status.success());
    assert_eq!(sandbox.alerts().len(), 2, "recovered once");
}

#[test]
fn a_slow_host_does_not_delay_other_hosts() {
    let server = TestServer::start();
    let body = fixture_feed("world-news.xml");
    server.route(
        "/slow1.xml",
        Route::Slow {
            delay: Duration::from_secs(2),
            body: body.clone(),
        },
    );
    server.route(
        "/slow2.xml",
        Route::Slow {
            delay: Duration::from_secs(2),
            body,
        },
    );
    server.route("/fast.xml", feed_route());
    let sandbox = Sandbox::new();
    // 127.0.0.1 and localhost are different hosts to newswatch.
    let fast = format!("http://localhost:{}/fast.xml", server.addr.port());
    config_with_feeds(
        &sandbox,
        &[server.url("/slow1.xml"), server.url("/slow2.xml"), fast],
        "[fetch]\nper_host = 1\n",
    );
    // The sandbox already wrote a [fetch] section: merge by rewriting it.
    let config = std::fs::read_to_string(sandbox.config_path()).unwrap();
    let config = config.replacen("[fetch]\nper_host = 1\n", "", 1).replacen(
        "[fetch]\n",
        "[fetch]\nper_host = 1\n",
        1,
    );
    std::fs::write(sandbox.config_path(), config).unwrap();

    let start = Instant::now();
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let fast_at = server.requests("/fast.xml")[0].at - start;
    assert!(
        fast_at < Duration::from_millis(1500),
        "the fast host waited {fast_at:?}"
    );
    let slow1 = server.requests("/slow1.xml")[0].at;
    let slow2 = server.requests("/slow2.xml")[0].at;
    let gap = if slow2 > slow1 {
        slow2 - slow1
    } else {
        slow1 - slow2
    };
    assert!(
        gap >= Duration::from_millis(1900),
        "per_host = 1 serialises one host ({gap:?})"
    );
}
