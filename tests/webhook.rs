//! The webhook sink against a local server: JSON and ntfy formats, a token
//! from the environment, retries while the endpoint fails.

mod common;

use std::time::{Duration, Instant};

use common::{Route, Sandbox, TestServer, builtin_rules, fixture_feed, stderr};

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
fn a_failing_endpoint_is_retried_with_backoff() {
    let server = TestServer::start();
    server.route("/hook", Route::Status(503));
    let sandbox = sandbox_with_hooks(&format!(
        "[[webhooks]]\nurl = \"{}\"\nmin_severity = \"high\"\n",
        server.url("/hook")
    ));
    let started = Instant::now();
    let child = sandbox
        .command(&["once"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Two failed attempts (at about 0 s and 1 s), then the endpoint recovers.
    while server.requests("/hook").len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(15));
        std::thread::sleep(Duration::from_millis(50));
    }
    server.route("/hook", ok_route());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let posts = server.requests("/hook");
    assert_eq!(posts.len(), 3, "two failures, then success");
    let gaps: Vec<Duration> = posts.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps[1] > gaps[0], "backoff grows: {gaps:?}");
    assert_eq!(
        sandbox.alerts().len(),
        2,
        "the log never waited for the webhook"
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
