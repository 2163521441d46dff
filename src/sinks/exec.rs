//! The exec sink: runs a configured program for each alert, with the alert's
//! JSON line on stdin. Bounded by a timeout; failures are logged, never fatal.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tracing::warn;

use crate::alerts::Alert;
use crate::config::Severity;

/// A program to run per alert.
#[derive(Debug, Clone)]
pub struct ExecSink {
    pub program: String,
    pub args: Vec<String>,
    pub timeout: Duration,
    pub min_severity: Severity,
}

impl ExecSink {
    /// From `[notify] exec = ["program", "arg", …]`; `None` when empty.
    pub fn new(command: &[String], timeout: Duration, min_severity: Severity) -> Option<ExecSink> {
        let (program, args) = command.split_first()?;
        Some(ExecSink {
            program: program.clone(),
            args: args.to_vec(),
            timeout,
            min_severity,
        })
    }

    /// Runs the program for `alert`, feeding it `json` and a newline.
    pub async fn run(&self, alert: &Alert, json: &str) {
        if alert.severity < self.min_severity {
            return;
        }
        let outcome = tokio::time::timeout(self.timeout, self.run_inner(json)).await;
        let problem = match outcome {
            Ok(Ok(status)) if status.success() => return,
            Ok(Ok(status)) => format!("exited with {status}"),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!(
                "did not finish within {}s and was killed",
                self.timeout.as_secs()
            ),
        };
        warn!(program = %self.program, alert = %alert.id, cause = %problem, "exec sink failed");
    }

    async fn run_inner(&self, json: &str) -> std::io::Result<std::process::ExitStatus> {
        let mut child = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            // A program that exits without reading its input is not an error.
            let _ = stdin.write_all(json.as_bytes()).await;
            let _ = stdin.write_all(b"\n").await;
        }
        child.wait().await
    }
}
