//! The daemon as a service: reload on SIGHUP and on config-file change (valid
//! and invalid), a graceful stop with a request in flight, and one process
//! per state.

mod common;

use std::io::Read;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{
    Route, Sandbox, TestServer, builtin_rules, fixture_feed, stderr, wait_for, world_server,
};

fn signal(child: &Child, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn stop(mut child: Child) -> String {
    signal(&child, "-TERM");
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "exit {status:?}: {err}");
    err
}

fn keys(sandbox: &Sandbox) -> Vec<String> {
    sandbox
        .alerts()
        .iter()
        .map(|a| a["item"]["key"].as_str().unwrap().to_string())
        .collect()
}

fn feeds_config(urls: &[String]) -> String {
    let feeds: String = urls
        .iter()
        .map(|u| format!("[[feeds]]\nurl = \"{u}\"\ninterval = \"1s\"\n\n"))
        .collect();
    format!("{feeds}{}", builtin_rules())
}

fn reload_scenario(watch: bool) {
    let server = TestServer::start();
    server.route(
        "/world.xml",
        Route::Feed {
            body: fixture_feed("world-news.xml"),
            etag: Some("\"1\"".into()),
        },
    );
    server.route(
        "/backlog.xml",
        Route::Feed {
            body: fixture_feed("backlog.xml"),
            etag: None,
        },
    );
    let sandbox = Sandbox::new();
    sandbox.write_config(&feeds_config(&[server.url("/world.xml")]));
    let args: &[&str] = if watch {
        &["run"]
    } else {
        &["run", "--no-watch"]
    };
    let child = sandbox
        .command(args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the first alerts", Duration::from_secs(20), || {
        sandbox.alerts().len() == 2
    });

    // A valid change: a second feed. Its alert arrives; nothing is re-alerted.
    sandbox.write_config(&feeds_config(&[
        server.url("/world.xml"),
        server.url("/backlog.xml"),
    ]));
    if !watch {
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            server.requests("/backlog.xml").len(),
            0,
            "--no-watch ignores the file change"
        );
        signal(&child, "-HUP");
    }
    wait_for("the new feed's alert", Duration::from_secs(20), || {
        keys(&sandbox).contains(&"bl-recent".to_string())
    });

    // An invalid change: reported, and the running configuration keeps working.
    sandbox.write_config("[[rules]]\nid = \"broken\"\nquery = 'troops AND'\n");
    if !watch {
        signal(&child, "-HUP");
    }
    std::thread::sleep(Duration::from_secs(2));
    server.route(
        "/world.xml",
        Route::Feed {
            body: fixture_feed("world-news-later.xml"),
            etag: Some("\"2\"".into()),
        },
    );
    wait_for(
        "an alert under the old configuration",
        Duration::from_secs(20),
        || keys(&sandbox).contains(&"wn-007".to_string()),
    );
    let err = stop(child);
    assert!(
        err.contains("configuration not reloaded, the running one stays"),
        "{err}"
    );
    assert!(err.contains("expected a term after AND"), "{err}");
    assert!(err.contains("reloading configuration"), "{err}");
    let mut all = keys(&sandbox);
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "no alert twice: {all:?}");
    assert_eq!(n, 4, "{all:?}");
}

#[test]
fn sighup_reloads_the_configuration() {
    reload_scenario(false);
}

#[test]
fn a_changed_config_file_is_reloaded() {
    reload_scenario(true);
}

#[test]
fn a_config_named_without_a_directory_is_watched_too() {
    // `newswatch --config newswatch.toml run` in the config's directory: the
    // path has no parent to watch, and edits used to go unnoticed.
    let server = world_server();
    let sandbox = Sandbox::new();
    sandbox.write_config(&feeds_config(&[]));
    let config = sandbox.config_path();
    let mut command = sandbox.command(&["run"]);
    let dir = config.parent().unwrap();
    command
        .current_dir(dir)
        .args(["--config", config.file_name().unwrap().to_str().unwrap()]);
    let child = command.stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    sandbox.write_config(&feeds_config(&[server.url("/world.xml")]));
    // Waited for by hand, so that the daemon is stopped before any assertion.
    let start = Instant::now();
    while server.requests("/world.xml").is_empty() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let err = stop(child);
    assert!(
        !server.requests("/world.xml").is_empty(),
        "the added feed was never polled: {err}"
    );
    assert!(err.contains("config file changed"), "{err}");
    // It started without feeds, and said so.
    assert!(
        err.contains("no feeds configured: nothing to poll"),
        "{err}"
    );
}

#[test]
fn one_process_polls_with_a_state_at_a_time() {
    let server = world_server();
    let sandbox = Sandbox::new();
    sandbox.write_config(&feeds_config(&[server.url("/world.xml")]));
    let daemon = sandbox
        .command(&["run"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the first poll", Duration::from_secs(10), || {
        !server.requests("/world.xml").is_empty()
    });
    // A second daemon and a one-off poll would deliver the same alerts again.
    let holder = format!("another newswatch (pid {}) is polling", daemon.id());
    for command in ["run", "once"] {
        let out = sandbox.run(&[command]);
        assert_eq!(out.status.code(), Some(1), "{command}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&holder), "{command}: {err}");
    }
    // Reading the state needs no lock.
    assert!(sandbox.run(&["feeds"]).status.success());
    stop(daemon);
    let out = sandbox.run(&["once"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits up to ten seconds for `done`; whether it came true.
fn within_ten_seconds(mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

#[test]
fn a_reload_onto_another_state_takes_its_lock_first() {
    let first = Sandbox::new();
    first.write_config(&feeds_config(&[]));
    let one = first
        .command(&["run"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The second daemon reloads on SIGHUP only, so that each reload is one
    // the test asked for; its log is read as it comes.
    let second = Sandbox::new();
    second.write_config(&feeds_config(&[]));
    let mut two = second
        .command(&["run", "--no-watch"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (pid_one, pid_two) = (one.id(), two.id());
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let log = log.clone();
        let mut stderr = two.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut buf) {
                log.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let logged = |what: &str| log.lock().unwrap().contains(what);
    let holds = |dir: &std::path::Path, pid: u32| {
        std::fs::read_to_string(dir.join("newswatch.lock"))
            .is_ok_and(|holder| holder.trim() == pid.to_string())
    };
    // The second daemon's config, moved to another state directory.
    let reload_on = |dir: &std::path::Path| {
        let text = format!(
            "[state]\ndir = \"{}\"\n\n[notify]\ndesktop = false\n\n{}",
            dir.display(),
            feeds_config(&[])
        );
        std::fs::write(second.config_path(), text).unwrap();
        signal(&two, "-HUP");
    };
    let started = within_ten_seconds(|| {
        holds(&first.path("state"), pid_one) && holds(&second.path("state"), pid_two)
    });
    // Onto the state the first daemon polls with: refused, and the second
    // keeps its own.
    let refused = started && {
        reload_on(&first.path("state"));
        within_ten_seconds(|| logged("configuration not reloaded"))
    };
    // Onto a state nobody uses: taken, so a one-off poll there is refused.
    let third = second.path("third");
    let moved = refused && {
        reload_on(&third);
        within_ten_seconds(|| holds(&third, pid_two))
    };
    let once = second.run(&["once"]);
    stop(one);
    signal(&two, "-TERM");
    let status = two.wait().unwrap();
    reader.join().unwrap();
    let log = log.lock().unwrap().clone();
    assert!(status.success() && started && refused && moved, "{log}");
    let holder = |pid: u32| format!("another newswatch (pid {pid}) is polling");
    assert!(log.contains(&holder(pid_one)), "{log}");
    assert!(
        holds(&second.path("state"), pid_two),
        "the old lock file was rewritten"
    );
    assert_eq!(once.status.code(), Some(1), "{}", stderr(&once));
    assert!(
        stderr(&once).contains(&holder(pid_two)),
        "{}",
        stderr(&once)
    );
    // Once the second daemon is gone, the third state is free again.
    let out = second.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn sigterm_waits_for_a_request_in_flight() {
    let server = TestServer::start();
    server.route(
        "/slow.xml",
        Route::Slow {
            delay: Duration::from_secs(2),
            body: fixture_feed("world-news.xml"),
        },
    );
    let sandbox = Sandbox::new();
    sandbox.write_config(&feeds_config(&[server.url("/slow.xml")]));
    let child = sandbox
        .command(&["run"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the request", Duration::from_secs(10), || {
        !server.requests("/slow.xml").is_empty()
    });
    let asked = Instant::now();
    let err = stop(child);
    assert!(
        asked.elapsed() >= Duration::from_millis(1500),
        "stopped before the response: {err}"
    );
    assert_eq!(
        sandbox.alerts().len(),
        2,
        "the in-flight poll finished and delivered: {err}"
    );
}

fn http_get(addr: &str, path: &str) -> String {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn metrics_and_healthz_are_served_over_http() {
    let server = TestServer::start();
    server.route(
        "/world.xml",
        Route::Feed {
            body: fixture_feed("world-news.xml"),
            etag: Some("\"m\"".into()),
        },
    );
    server.route("/down.xml", Route::Status(500));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "[metrics]\nlisten = \"{addr}\"\n\n{}",
        feeds_config(&[server.url("/world.xml"), server.url("/down.xml")])
    ));
    let child = sandbox
        .command(&["run"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the alerts", Duration::from_secs(20), || {
        sandbox.alerts().len() == 2
    });
    wait_for("a second poll", Duration::from_secs(20), || {
        server.requests("/world.xml").len() >= 2
    });

    let health = http_get(&addr, "/healthz");
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("ok\n"),
        "{health}"
    );
    let metrics = http_get(&addr, "/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    for line in [
        "newswatch_feeds{status=\"ok\"} 1\n",
        "newswatch_feeds{status=\"failing\"} 1\n",
        "newswatch_alerts_total{rule=\"troop-deployment\"} 1\n",
        "newswatch_alerts_total{rule=\"eu-summit\"} 1\n",
        "newswatch_pending_alerts 0\n",
        "newswatch_items_total 6\n",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in {metrics}");
    }
    assert!(
        metrics.contains("newswatch_fetches_total{result=\"not_modified\"} "),
        "{metrics}"
    );
    assert!(
        !metrics.contains("newswatch_fetches_total{result=\"failed\"} 0\n"),
        "{metrics}"
    );
    let missing = http_get(&addr, "/nope");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    stop(child);
}
