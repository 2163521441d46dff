//! The webhook sink against a local server: JSON and ntfy formats, a token
//! from the environment, retries while the endpoint fails.

mod common;

use std::time::{Duration, Instant};

use common::{Route, Sandbox, TestServer, builtin_rules, fixture_feed, run_until, stderr};

fn ok_route() -> Route {
    Route::Feed {
        body: b"ok".to_vec(),
        etag: None,
    }
}

fn sandbox_with_hooks(hooks: &str) -> Sandbox {
    let sandbox = Sandbox::new();
    let feed = sandbox.path("world.xml");
    std::fs::write(&feed, fixture_feed("world-news.xml")).unwrap();
    sandbox.write_config(&format!(
        "[[feeds]]\nurl = \"{}\"\n\n{hooks}\n{}",
        feed.display(),
        builtin_rules()
    ));
    sandbox
}

#[test]
fn posts_alert_json_with_a_token_from_the_environment() {
    let server = TestServer::start();
    server.route("/hook", ok_route());
    let sandbox = sandbox_with_hooks(&format!(
        "[[webhooks]]\nurl = \"{}\"\ntoken_env = \"NW_TEST_TOKEN\"\n",
        server.url("/hook")
    ));
    let out = sandbox
        .command(&["once"])
        .env("NW_TEST_TOKEN", "s3cret")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let posts = server.requests("/hook");
    assert_eq!(posts.len(), 2);
    let log = std::fs::read_to_string(sandbox.log_path()).unwrap();
    for post in &posts {
        assert_eq!(post.method, "POST");
        assert_eq!(
            post.headers.get("authorization").map(String::as_str),
            Some("Bearer s3cret")
        );
        assert_eq!(
            post.headers.get("content-type").map(String::as_str),
            Some("application/json")
        );
        let body = String::from_utf8(post.body.clone()).unwrap();
        assert!(log.contains(&body), "the body is the log line: {body}");
    }
}

#[test]
fn ntfy_format_and_severity_filter() {
    let server = TestServer::start();
    server.route("/topic", ok_route());
    let sandbox = sandbox_with_hooks(&format!(
        "[[webhooks]]\nurl = \"{}\"\nformat = \"ntfy\"\nmin_severity = \"high\"\n",
        server.url("/topic")
    ));
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let posts = server.requests("/topic");
    assert_eq!(posts.len(), 1, "only the high alert");
    let post = &posts[0];
    assert_eq!(
        post.headers.get("title").map(String::as_str),
        Some("Foreign troops deployed")
    );
    assert_eq!(post.headers.get("priority").map(String::as_str), Some("4"));
    assert_eq!(
        post.headers.get("tags").map(String::as_str),
        Some("troop-deployment")
    );
    assert_eq!(
        post.headers.get("click").map(String::as_str),
        Some("https://news.example.org/world/wn-001")
    );
    assert!(
        String::from_utf8_lossy(&post.body).starts_with("Kyiv says Pyongyang has sent soldiers")
    );
    assert!(!post.headers.contains_key("authorization"));
}

#[test]
fn alerts_wait_in_the_state_for_a_failing_endpoint() {
    let server = TestServer::start();
    server.route("/hook", Route::Status(503));
    let sandbox = sandbox_with_hooks(&format!(
        "[[webhooks]]\nurl = \"{}\"\nmin_severity = \"high\"\n",
        server.url("/hook")
    ));
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("webhook failing"), "{}", stderr(&out));
    assert_eq!(server.requests("/hook").len(), 1);
    assert_eq!(
        sandbox.alerts().len(),
        2,
        "the log never waits for a webhook"
    );
    // The endpoint recovers: the next run posts the alert, and only once.
    server.route("/hook", ok_route());
    std::thread::sleep(Duration::from_millis(1100));
    for _ in 0..2 {
        let out = sandbox.run(&["once"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let posts = server.requests("/hook");
    assert_eq!(posts.len(), 2, "one failure, then one success");
    assert_eq!(posts[0].body, posts[1].body);
}

#[test]
fn the_daemon_retries_with_growing_pauses() {
    let server = TestServer::start();
    server.route("/hook", Route::Status(503));
    let sandbox = sandbox_with_hooks(&format!(
        "[[webhooks]]\nurl = \"{}\"\nmin_severity = \"high\"\n",
        server.url("/hook")
    ));
    let mut recovered = false;
    run_until(&sandbox, || {
        let n = server.requests("/hook").len();
        if n >= 3 && !recovered {
            server.route("/hook", ok_route());
            recovered = true;
        }
        n >= 4
    });
    let posts = server.requests("/hook");
    assert_eq!(posts.len(), 4, "three failures, then success");
    let gaps: Vec<Duration> = posts.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps[0] >= Duration::from_millis(900), "{gaps:?}");
    assert!(
        gaps[1] > gaps[0] && gaps[2] > gaps[1],
        "backoff grows: {gaps:?}"
    );
}

#[test]
fn a_failing_endpoint_gets_one_attempt_per_pause_not_one_per_alert() {
    let server = TestServer::start();
    server.route("/hook", Route::Status(503));
    // Two alerts wait for it.
    let sandbox = sandbox_with_hooks(&format!(
        "[[webhooks]]\nurl = \"{}\"\n",
        server.url("/hook")
    ));
    let started = Instant::now();
    run_until(&sandbox, || started.elapsed() > Duration::from_secs(4));
    let posts = server.requests("/hook");
    assert!(posts.len() >= 2, "{} posts", posts.len());
    let gaps: Vec<Duration> = posts.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(
        gaps.iter().all(|&gap| gap >= Duration::from_millis(900)),
        "back to back: {gaps:?}"
    );
}

#[test]
fn a_refusal_or_a_redirect_is_not_tried_again() {
    let server = TestServer::start();
    server.route("/bad", Route::Status(400));
    server.route(
        "/moved",
        Route::Redirect {
            status: 302,
            location: server.url("/elsewhere"),
        },
    );
    server.route("/elsewhere", ok_route());
    let sandbox = sandbox_with_hooks(&format!(
        "[[webhooks]]\nurl = \"{}\"\nmin_severity = \"high\"\n\n\
         [[webhooks]]\nurl = \"{}\"\nmin_severity = \"high\"\n",
        server.url("/bad"),
        server.url("/moved")
    ));
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("HTTP 400"), "{err}");
    let moved = format!("redirected to {}", server.url("/elsewhere"));
    assert!(err.contains(&moved), "{err}");
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.requests("/bad").len(), 1);
    assert_eq!(server.requests("/moved").len(), 1);
    // A POST turned into a GET elsewhere is not a delivery.
    assert!(server.requests("/elsewhere").is_empty());
}

#[test]
fn a_hanging_endpoint_does_not_hold_up_the_stop() {
    let server = TestServer::start();
    server.route("/hook", Route::Hang);
    let sandbox = sandbox_with_hooks(&format!(
        "[[webhooks]]\nurl = \"{}\"\ntimeout = \"60s\"\n",
        server.url("/hook")
    ));
    let (err, stopped_in) = run_until(&sandbox, || !server.requests("/hook").is_empty());
    assert!(
        stopped_in < Duration::from_secs(30),
        "took {stopped_in:?} to stop: {err}"
    );
    // Both alerts are still queued, and go out once the endpoint answers.
    server.route("/hook", ok_route());
    let before = server.requests("/hook").len();
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut bodies: Vec<_> = server.requests("/hook")[before..]
        .iter()
        .map(|p| p.body.clone())
        .collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(
        bodies.len(),
        2,
        "each alert posted once the endpoint answers"
    );
}

#[test]
fn a_token_in_a_world_readable_config_is_warned_about() {
    let sandbox =
        sandbox_with_hooks("[[webhooks]]\nurl = \"http://127.0.0.1:9/hook\"\ntoken = \"inline\"\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        sandbox.config_path(),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = sandbox.run(&["check"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("holds a webhook token and is readable by other users (mode 644)"),
        "{text}"
    );
    std::fs::set_permissions(
        sandbox.config_path(),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = sandbox.run(&["check"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("readable by other users"));
}

#[test]
fn settings_that_could_never_post_are_config_errors() {
    for (hook, expected) in [
        (
            "header = \"X Api Key\"\ntoken = \"t\"\n",
            "header \"X Api Key\" is not a valid HTTP header name",
        ),
        ("timeout = \"0s\"\n", "timeout must be 1s or more"),
        (
            "\n[[webhooks]]\nurl = \"http://127.0.0.1:9/hook\"\nformat = \"ntfy\"\n",
            "webhook http://127.0.0.1:9/hook is listed twice",
        ),
        (
            "token = \"two\\nlines\"\n",
            "holds characters an HTTP header cannot carry",
        ),
    ] {
        let sandbox = sandbox_with_hooks(&format!(
            "[[webhooks]]\nurl = \"http://127.0.0.1:9/hook\"\n{hook}"
        ));
        let out = sandbox.run(&["check"]);
        assert_eq!(out.status.code(), Some(2), "{hook}");
        assert!(stderr(&out).contains(expected), "{hook}: {}", stderr(&out));
    }
}
