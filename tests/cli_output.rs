//! The commands' output when it cannot be written: a full disk, a reader
//! that goes away, a closed stderr. No panic, a message where one can be
//! written, and the exit status the contract gives (2 for bad usage).

mod common;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use common::{Sandbox, stderr};

fn sandbox() -> Sandbox {
    let sandbox = Sandbox::new();
    let feeds: String = (0..2000)
        .map(|i| format!("[[feeds]]\nurl = \"https://f{i}.example.org/rss\"\n\n"))
        .collect();
    sandbox.write_config(&feeds);
    sandbox
}

#[test]
fn a_full_disk_is_an_error_not_a_panic() {
    let sandbox = sandbox();
    for args in [
        &["export"][..],
        &["check"],
        &["completions", "bash"],
        &["feeds", "--json"],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = sandbox.command(args).stdout(full).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("No space left on device"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    let sandbox = sandbox();
    for args in [&["export"][..], &["completions", "bash"], &["man"]] {
        let mut child = sandbox
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 10];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        // The pipe is closed here, with most of the output unread.
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert!(
            out.status.success() || out.status.signal() == Some(13),
            "{args:?}: {:?} {err}",
            out.status
        );
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

#[test]
fn a_closed_stderr_does_not_abort() {
    let sandbox = Sandbox::new();
    std::fs::write(
        sandbox.config_path(),
        "[defaults]\ninterval = \"nonsense\"\n",
    )
    .unwrap();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = sandbox.command(&["check"]).stderr(full).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{:?}", out.status);
}

#[test]
fn bad_usage_exits_2_and_far_dates_are_no_panic() {
    let sandbox = sandbox();
    let out = sandbox.run(&["match"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing to match"),
        "{}",
        stderr(&out)
    );
    let out = sandbox.run(&["feeds", "add", ""]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    for args in [
        &["tail", "--since", "300000y"][..],
        &["stories", "--since", "300000y"],
        &["match", "--since", "300000y", "--rule", "troops"],
    ] {
        let out = sandbox.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
}
