//! The exec sink: runs a configured program for each alert, with the alert's
//! JSON line on stdin. Bounded by a timeout, after which the program and
//! whatever it started are killed; failures are logged with the start of
//! what the program said on stderr, never fatal.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::alerts::Alert;
use crate::config::Severity;

/// Alerts waiting for the program at most; beyond, new ones are not run
/// for (and say so) rather than letting memory grow behind a slow program.
const QUEUE: usize = 256;

/// A program to run per alert, from a task of its own: the log never waits
/// for it. Alerts are handed over in order and run one at a time.
pub struct ExecSink {
    program: String,
    min_severity: Severity,
    queue: Option<mpsc::Sender<(String, String)>>,
    /// Kill the running program (with what it started) and run no more.
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl ExecSink {
    /// From `[notify] exec = ["program", "arg", …]`; `None` when empty.
    /// Starts the task (needs a tokio runtime).
    pub fn new(command: &[String], timeout: Duration, min_severity: Severity) -> Option<ExecSink> {
        let (program, args) = command.split_first()?;
        let runner = Program {
            program: program.clone(),
            args: args.to_vec(),
            timeout,
        };
        let (tx, mut rx) = mpsc::channel::<(String, String)>(QUEUE);
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            while let Some((id, json)) = rx.recv().await {
                if !runner.run(&id, &json, &stopped).await {
                    return;
                }
            }
        });
        Some(ExecSink {
            program: program.clone(),
            min_severity,
            queue: Some(tx),
            stop,
            task: Some(task),
        })
    }

    /// Hands `alert` (its JSON line `json`) to the program.
    pub fn send(&self, alert: &Alert, json: &str) {
        if alert.severity < self.min_severity {
            return;
        }
        let Some(queue) = &self.queue else {
            return;
        };
        if queue
            .try_send((alert.id.clone(), json.to_string()))
            .is_err()
        {
            warn!(program = %self.program, alert = %alert.id, "exec sink: {QUEUE} alerts already wait for the program; not run for this one (it is in the log)");
        }
    }

    /// Lets the program run for what was handed over, waiting at most
    /// `grace`; the rest is not run (it is in the log).
    pub async fn close(&mut self, grace: Duration) {
        self.queue = None;
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(grace, &mut task).await.is_err()
        {
            self.stop.cancel();
            let _ = task.await;
            warn!(program = %self.program, "exec sink: stopped before the program ran for every alert (they are in the log)");
        }
    }
}

/// The configured program.
struct Program {
    program: String,
    args: Vec<String>,
    timeout: Duration,
}

impl Program {
    /// Runs the program for alert `id`, feeding it `json` and a newline;
    /// false if `stop` ended it.
    async fn run(&self, id: &str, json: &str, stop: &CancellationToken) -> bool {
        let mut child = match tokio::process::Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group, so that a timeout kills what it started too.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                warn!(program = %self.program, alert = %id, cause = %e, "exec sink failed");
                return true;
            }
        };
        // The first bytes of what it says on stderr, for the warning; the
        // rest is read and dropped (a program must not fill the journal, nor
        // block on a full pipe).
        let stderr = child.stderr.take().map(|mut err| {
            tokio::spawn(async move {
                let mut kept = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = err.read(&mut buf).await {
                    let room = STDERR_KEPT.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
                kept
            })
        });
        let mut stdin = child.stdin.take();
        let running = tokio::time::timeout(self.timeout, async {
            if let Some(stdin) = stdin.as_mut() {
                // A program that exits without reading its input is not an error.
                let _ = stdin.write_all(json.as_bytes()).await;
                let _ = stdin.write_all(b"\n").await;
            }
            drop(stdin.take());
            child.wait().await
        });
        let outcome = tokio::select! {
            outcome = running => outcome,
            _ = stop.cancelled() => {
                kill_group(&child);
                let _ = child.wait().await;
                return false;
            }
        };
        let problem = match outcome {
            Ok(Ok(status)) if status.success() => None,
            Ok(Ok(status)) => Some(format!("exited with {status}")),
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => {
                kill_group(&child);
                let _ = child.wait().await;
                Some(format!(
                    "did not finish within {}s and was killed, with what it started",
                    self.timeout.as_secs()
                ))
            }
        };
        let Some(problem) = problem else {
            // Nothing to report: what it said is not waited for (a child it
            // left running may hold its stderr open).
            if let Some(task) = stderr {
                task.abort();
            }
            return true;
        };
        let said = match stderr {
            Some(mut task) => {
                // Usually at its end already; a child left holding the pipe
                // is not waited for long.
                let said = tokio::time::timeout(Duration::from_secs(1), &mut task).await;
                task.abort();
                said.ok().and_then(Result::ok).unwrap_or_default()
            }
            None => Vec::new(),
        };
        let said = crate::text::sanitize_terminal(String::from_utf8_lossy(&said).trim());
        warn!(program = %self.program, alert = %id, cause = %problem, stderr = %said, "exec sink failed");
        true
    }
}

/// How much of a program's stderr is kept for the warning.
const STDERR_KEPT: usize = 2048;

/// Kills `child`'s process group (it leads one of its own).
fn kill_group(child: &tokio::process::Child) {
    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
        // SAFETY: kill only sends a signal; a negative pid names the group
        // the child leads, which holds nothing of ours.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}
