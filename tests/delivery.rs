//! Delivery guarantees, tested on the real binary: exactly once across
//! SIGKILL, alerts kept pending while the log cannot be written, the exec and
//! stdout sinks, and `newswatch tail`.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Route, Sandbox, TestServer, run_until, stderr};

/// An RSS feed of `n` recent items that all match the rule `flood`.
fn flood_feed(n: usize) -> Vec<u8> {
    let date = (chrono::Utc::now() - chrono::Duration::minutes(30)).to_rfc2822();
    let mut xml =
        String::from("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Floods</title>");
    for i in 0..n {
        xml.push_str(&format!(
            "<item><guid>flood-{i}</guid><title>Flood warning {i} for the river valley</title>\
             <link>https://floods.example.org/{i}</link><pubDate>{date}</pubDate>\
             <description>Residents near gauge {i} should prepare for flooding.</description></item>"
        ));
    }
    xml.push_str("</channel></rss>");
    xml.into_bytes()
}

fn kill(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Kills the daemon with SIGKILL at pseudo-random moments while it ingests a
/// growing feed and writes alerts, many times; afterwards every alert is in
/// the log exactly once.
#[test]
fn every_alert_exactly_once_across_sigkill() {
    let server = TestServer::start();
    let sandbox = Sandbox::new();
    sandbox.write_config(&format!(
        "[[feeds]]\nurl = \"{}\"\ninterval = \"1s\"\n\n[[rules]]\nid = \"flood\"\nquery = 'flood*'\n",
        server.url("/floods.xml")
    ));
    let mut items = 120;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut kills = 0;
    for _round in 0..12 {
        server.route(
            "/floods.xml",
            Route::Feed {
                body: flood_feed(items),
                etag: None,
            },
        );
        let mut child = sandbox
            .command(&["run"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let wait = Duration::from_millis(40 + seed % 700);
        std::thread::sleep(wait);
        if child.try_wait().unwrap().is_none() {
            kill(child.id(), "-KILL");
            kills += 1;
        }
        child.wait().unwrap();
        items += 25;
    }
    assert!(kills >= 10, "the daemon was killed mid-run ({kills} times)");

    // A last clean run delivers whatever is still pending.
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let alerts = sandbox.alerts();
    let mut per_item: HashMap<String, usize> = HashMap::new();
    let mut ids = HashSet::new();
    for alert in &alerts {
        assert!(
            ids.insert(alert["id"].as_str().unwrap().to_string()),
            "duplicate id {}",
            alert["id"]
        );
        *per_item
            .entry(alert["item"]["key"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let expected: HashSet<String> = (0..items - 25).map(|i| format!("flood-{i}")).collect();
    let got: HashSet<String> = per_item.keys().cloned().collect();
    let missing: Vec<_> = expected.difference(&got).collect();
    assert!(missing.is_empty(), "missing alerts: {missing:?}");
    assert!(per_item.values().all(|&n| n == 1), "an item alerted twice");
    assert_eq!(alerts.len(), expected.len());
}

#[test]
fn an_unwritable_log_keeps_alerts_pending_until_it_can_be_written() {
    let sandbox = Sandbox::new();
    let feed = sandbox.path("floods.xml");
    std::fs::write(&feed, flood_feed(3)).unwrap();
    sandbox.write_config(&format!(
        "[log]\npath = \"blocked/alerts.jsonl\"\n\n[[feeds]]\nurl = \"{}\"\n\n[[rules]]\nid = \"flood\"\nquery = 'flood*'\n",
        feed.display()
    ));
    // A regular file where the log's directory should be.
    std::fs::create_dir_all(sandbox.path("state")).unwrap();
    std::fs::write(sandbox.path("state/blocked"), "not a directory").unwrap();

    let out = sandbox.run(&["once"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("cannot write the alert log") && err.contains("blocked/alerts.jsonl"),
        "{err}"
    );

    std::fs::remove_file(sandbox.path("state/blocked")).unwrap();
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = std::fs::read_to_string(sandbox.path("state/blocked/alerts.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 3, "{log}");
}

#[test]
fn a_full_disk_keeps_alerts_pending_and_says_so() {
    // /dev/full takes no byte: every write fails with ENOSPC, as on a full
    // disk. It also reads as endless zeros, which the start-up scan of the
    // log once read to the end, until the process ran out of memory.
    let sandbox = Sandbox::new();
    let feed = sandbox.path("floods.xml");
    std::fs::write(&feed, flood_feed(2)).unwrap();
    let config = |log: &str| {
        format!(
            "[log]\npath = \"{log}\"\n\n[[feeds]]\nurl = \"{}\"\n\n[[rules]]\nid = \"flood\"\nquery = 'flood*'\n",
            feed.display()
        )
    };
    sandbox.write_config(&config("/dev/full"));
    let out = sandbox.run(&["once"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("cannot write the alert log") && err.contains("No space left on device"),
        "{err}"
    );

    // Room again: the pending alerts are written, each once.
    sandbox.write_config(&config("alerts.jsonl"));
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = std::fs::read_to_string(sandbox.path("state/alerts.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");
}

#[test]
fn the_daemon_reports_an_unwritable_log_once_and_recovers() {
    let sandbox = Sandbox::new();
    let feed = sandbox.path("floods.xml");
    std::fs::write(&feed, flood_feed(2)).unwrap();
    sandbox.write_config(&format!(
        "[log]\npath = \"blocked/alerts.jsonl\"\n\n[[feeds]]\nurl = \"{}\"\ninterval = \"1s\"\n\n\
         [[rules]]\nid = \"flood\"\nquery = 'flood*'\n",
        feed.display()
    ));
    std::fs::create_dir_all(sandbox.path("state")).unwrap();
    std::fs::write(sandbox.path("state/blocked"), "not a directory").unwrap();
    let child = sandbox
        .command(&["run"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    std::fs::remove_file(sandbox.path("state/blocked")).unwrap();
    let log = sandbox.path("state/blocked/alerts.jsonl");
    let start = Instant::now();
    while std::fs::read_to_string(&log).map_or(0, |t| t.lines().count()) < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "alerts never reached the log"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    kill(child.id(), "-TERM");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        err.matches("alerts stay pending; will retry").count(),
        1,
        "{err}"
    );
    assert!(err.contains("alert delivery works again"), "{err}");
}

#[test]
fn exec_and_stdout_sinks_receive_each_alert() {
    let sandbox = Sandbox::new();
    let feed = sandbox.path("floods.xml");
    std::fs::write(&feed, flood_feed(2)).unwrap();
    let exec_out = sandbox.path("exec.out");
    sandbox.write_config(&format!(
        "[[feeds]]\nurl = \"{}\"\n\n[[rules]]\nid = \"flood\"\nquery = 'flood*'\n",
        feed.display()
    ));
    let config = std::fs::read_to_string(sandbox.config_path()).unwrap().replace(
        "[notify]\ndesktop = false\n",
        &format!(
            "[notify]\ndesktop = false\nstdout = true\nexec = [\"sh\", \"-c\", \"cat >> '{}'\"]\n",
            exec_out.display()
        ),
    );
    std::fs::write(sandbox.config_path(), config).unwrap();
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = std::fs::read_to_string(sandbox.log_path()).unwrap();
    assert_eq!(std::fs::read_to_string(&exec_out).unwrap(), log);
    assert_eq!(String::from_utf8_lossy(&out.stdout), log);

    // A command that hangs is killed after its timeout; delivery goes on.
    let sandbox = exec_sandbox("exec = [\"sleep\", \"30\"]\nexec_timeout = \"1s\"");
    let start = Instant::now();
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(start.elapsed() < Duration::from_secs(15));
    assert_eq!(sandbox.alerts().len(), 2);
    assert!(
        stderr(&out).contains("did not finish within 1s"),
        "{}",
        stderr(&out)
    );
}

/// A sandbox whose feed raises `alerts` flood alerts, with `notify` (keys
/// of `[notify]`, one per line) added to its config.
fn flood_sandbox(alerts: usize, notify: &str) -> Sandbox {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.path("floods.xml"), flood_feed(alerts)).unwrap();
    sandbox.write_config(&format!(
        "[[feeds]]\nurl = \"{}\"\n\n[[rules]]\nid = \"flood\"\nquery = 'flood*'\n",
        sandbox.path("floods.xml").display()
    ));
    let config = std::fs::read_to_string(sandbox.config_path())
        .unwrap()
        .replace(
            "[notify]\ndesktop = false\n",
            &format!("[notify]\ndesktop = false\n{notify}\n"),
        );
    std::fs::write(sandbox.config_path(), config).unwrap();
    sandbox
}

/// A sandbox with two flood alerts and `exec` as the exec sink's settings.
fn exec_sandbox(exec: &str) -> Sandbox {
    flood_sandbox(2, exec)
}

#[test]
fn an_exec_program_dies_with_what_it_started_and_is_quoted() {
    // It starts a child of its own, complains, and never finishes.
    let marker = format!("sleep {}", 4000 + std::process::id() % 1000);
    let sandbox = exec_sandbox(&format!(
        "exec = [\"sh\", \"-c\", \"{marker} & echo complaint >&2; wait\"]\nexec_timeout = \"1s\""
    ));
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sandbox.alerts().len(), 2);
    let err = stderr(&out);
    assert!(err.contains("did not finish within 1s"), "{err}");
    assert!(err.contains("complaint"), "{err}");
    let left = std::process::Command::new("pgrep")
        .args(["-f", &marker])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "left running: {}",
        String::from_utf8_lossy(&left.stdout)
    );

    // A flood on stderr is not passed on.
    let sandbox = exec_sandbox(
        "exec = [\"sh\", \"-c\", \"head -c 20000000 /dev/zero | tr '\\\\0' x >&2; exit 3\"]",
    );
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("exited with exit status: 3"), "{err}");
    assert!(err.len() < 100_000, "{} bytes on stderr", err.len());
}

#[test]
fn a_slow_exec_program_does_not_hold_up_the_log() {
    // Each run takes 30 s; the log must not wait for the first to finish.
    let sandbox = exec_sandbox(
        "exec = [\"sh\", \"-c\", \"cat >/dev/null; sleep 30\"]\nexec_timeout = \"60s\"",
    );
    let mut logged = 0;
    let (err, stopped_in) = run_until(&sandbox, || {
        logged = sandbox.alerts().len();
        logged >= 2
    });
    assert_eq!(logged, 2, "{err}");
    // Stopping waits for the program a few seconds, not for every run.
    assert!(
        stopped_in < Duration::from_secs(25),
        "{stopped_in:?}: {err}"
    );
    assert!(
        err.contains("stopped before the program ran for every alert"),
        "{err}"
    );
}

#[test]
fn stdout_nobody_reads_holds_up_neither_the_log_nor_the_stop() {
    let sandbox = flood_sandbox(300, "stdout = true");
    // stdout is a pipe that is never read: 300 lines do not fit in it.
    let mut daemon = sandbox
        .command(&["run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while sandbox.alerts().len() < 300 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let logged = sandbox.alerts().len();
    kill(daemon.id(), "-TERM");
    let stopping = Instant::now();
    let mut stopped = None;
    while stopping.elapsed() < Duration::from_secs(30) {
        if let Some(status) = daemon.try_wait().unwrap() {
            stopped = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if stopped.is_none() {
        daemon.kill().unwrap();
    }
    let out = daemon.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(logged, 300, "{err}");
    assert!(stopped.is_some_and(|s| s.success()), "{stopped:?}: {err}");
}

fn write_log(sandbox: &Sandbox, lines: &[String]) {
    std::fs::create_dir_all(sandbox.path("state")).unwrap();
    std::fs::write(
        sandbox.log_path(),
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

fn log_line(id: &str, rule: &str, severity: &str, title: &str) -> String {
    serde_json::json!({
        "v": 1, "id": id, "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "rule": rule, "title": "A rule", "severity": severity,
        "item": {"key": id, "title": title, "link": "https://example.org/x", "published": null,
                 "feed": {"url": "https://example.org/feed", "name": "Example"}},
        "story": "s", "sources": 1, "matches": [], "entities": []
    })
    .to_string()
}

#[test]
fn tail_prints_filters_and_strips_escapes() {
    let sandbox = Sandbox::new();
    sandbox.write_config("");
    let lines = vec![
        log_line(
            "01A",
            "troop-deployment",
            "high",
            "Troops \u{1b}]0;owned\u{7}moved\u{1b}[2J",
        ),
        log_line("01B", "eu-summit", "medium", "Leaders meet"),
        "not json at all".to_string(),
        log_line("01C", "eu-summit", "low", "Ministers meet"),
    ];
    write_log(&sandbox, &lines);

    let out = sandbox.run(&["tail"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(
        text.contains("Troops moved — Example  https://example.org/x"),
        "{text}"
    );

    let out = sandbox.run(&["tail", "--severity", "medium", "--rule", "eu-summit"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("Leaders meet"));

    let out = sandbox.run(&["tail", "--json", "-n", "2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text,
        format!("{}\n", lines[3]),
        "the bad line is skipped, the last is passed through"
    );
}

#[test]
fn tail_skips_an_overlong_line_and_refuses_a_log_without_end() {
    let sandbox = Sandbox::new();
    sandbox.write_config("");
    // Before the first alert there is no log yet: not an error.
    let out = sandbox.run(&["tail"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("no alerts yet"), "{}", stderr(&out));

    // A damaged log: 3 MiB without a newline between two alerts.
    let lines = vec![
        log_line("01A", "r", "high", "before"),
        "x".repeat(3 << 20),
        log_line("01B", "r", "high", "after"),
    ];
    write_log(&sandbox, &lines);
    let out = sandbox.run(&["tail", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, format!("{}\n{}\n", lines[0], lines[2]));
    let out = sandbox.run(&["tail", "--json", "-n", "1"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n", lines[2])
    );

    // A log on a device has no history to show: /dev/zero was read until
    // memory ran out.
    sandbox.write_config("[log]\npath = \"/dev/zero\"\n");
    let out = sandbox.run(&["tail"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the alert log /dev/zero is not a regular file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn tail_follows_appends_and_rotation() {
    let sandbox = Sandbox::new();
    sandbox.write_config("");
    write_log(&sandbox, &[log_line("01A", "r", "high", "first")]);
    let mut child = sandbox
        .command(&["tail", "-f", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let next = || {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("tail -f printed nothing")
    };
    assert!(next().contains("first"));

    let append = |line: String| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(sandbox.log_path())
            .unwrap();
        f.write_all(format!("{line}\n").as_bytes()).unwrap();
    };
    append(log_line("01B", "r", "high", "second"));
    assert!(next().contains("second"));
    std::fs::rename(sandbox.log_path(), sandbox.path("state/alerts.jsonl.1")).unwrap();
    append(log_line("01C", "r", "high", "third after rotation"));
    assert!(next().contains("third after rotation"));
    child.kill().unwrap();
    child.wait().unwrap();
}
