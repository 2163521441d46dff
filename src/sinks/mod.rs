//! Sinks: where delivered alerts go.
//!
//! The JSONL log is the record and always on; desktop notifications and the
//! stdout copy are conveniences whose failures are logged and never stop
//! delivery. [`deliver_pending`] moves alerts from the state's pending list
//! into the sinks with exactly-once semantics for the log: write and flush the
//! line, then mark it delivered; on start-up, ids already at the end of the
//! log are not written again.

pub mod desktop;
pub mod exec;
pub mod jsonl;
pub mod webhook;

use std::io::Write;

use tracing::{error, warn};

use crate::alerts::Alert;
use crate::config::Severity;
use crate::store::{Store, StoreError};
use crate::text::sanitize_terminal;

pub use desktop::DesktopSink;
pub use jsonl::JsonlSink;

/// Why delivery stopped before the pending list was empty.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the alert log {path}: {cause}")]
    Log { path: String, cause: std::io::Error },
}

/// How long stopping (or the end of `once`) waits, in all, for the stdout
/// copy, the exec program and the webhooks.
const SINK_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// The configured sinks.
pub struct Sinks {
    pub log: JsonlSink,
    pub desktop: Option<DesktopSink>,
    pub stdout: Option<StdoutSink>,
    pub min_severity: Severity,
    pub exec: Option<exec::ExecSink>,
    pub webhooks: Vec<webhook::WebhookSink>,
}

impl Sinks {
    /// Shows the "N more alerts" summary if the desktop budget allows it
    /// (`force`: regardless, e.g. before exiting).
    pub async fn flush_held(&mut self, force: bool) {
        if let Some(desktop) = self.desktop.as_mut() {
            desktop.flush_held(force).await;
        }
    }

    /// Shows held-back notifications, lets the exec program run for what
    /// it was handed and the webhooks post what is due, for a few seconds at
    /// most; what the webhooks do not post stays queued in the state for the
    /// next start.
    pub async fn close(&mut self) {
        self.flush_held(true).await;
        let deadline = tokio::time::Instant::now() + SINK_GRACE;
        let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
        if let Some(stdout) = self.stdout.as_mut() {
            stdout.close(left()).await;
        }
        if let Some(exec) = self.exec.as_mut() {
            exec.close(left()).await;
        }
        for hook in &mut self.webhooks {
            hook.close(left()).await;
        }
    }

    /// Whether notifications are being held back for a summary.
    pub fn holding(&self) -> bool {
        self.desktop.as_ref().is_some_and(DesktopSink::holding)
    }
}

/// Lines that wait for stdout at most; beyond, alerts are not copied there.
const STDOUT_QUEUE: usize = 1024;

/// The copy of each alert's line on stdout, written by a thread of its own:
/// a reader that stops reading (`newswatch run | slow-consumer`) must hold
/// up neither delivery nor the daemon's stop. There is one writer for the
/// process, shared by every configuration a reload brings: a writer stuck
/// on a full pipe is not joined by another at each reload.
pub struct StdoutSink {
    writer: &'static StdoutWriter,
    /// The queue was full at the last alert (said once per stretch).
    full: bool,
}

/// The process's stdout writer: its queue, and how many lines wait in it.
struct StdoutWriter {
    lines: std::sync::mpsc::SyncSender<String>,
    waiting: std::sync::atomic::AtomicUsize,
}

static STDOUT_WRITER: std::sync::OnceLock<Option<StdoutWriter>> = std::sync::OnceLock::new();

impl StdoutSink {
    /// The sink, with the writing thread started on first use; `None` (and
    /// a warning) if there can be none.
    pub fn start() -> Option<StdoutSink> {
        let writer = STDOUT_WRITER.get_or_init(|| {
            let (lines, queue) = std::sync::mpsc::sync_channel::<String>(STDOUT_QUEUE);
            let spawned = std::thread::Builder::new()
                .name("stdout-sink".into())
                .spawn(move || {
                    let mut out = std::io::stdout();
                    for line in queue {
                        let written = writeln!(out, "{line}").and_then(|()| out.flush());
                        let waiting = STDOUT_WRITER.get().and_then(Option::as_ref).map(|w| &w.waiting);
                        if let Err(e) = written {
                            warn!(cause = %e, "cannot write alerts to stdout; no more are copied there");
                            // What is still queued will never be written.
                            if let Some(waiting) = waiting {
                                waiting.store(0, std::sync::atomic::Ordering::Relaxed);
                            }
                            return;
                        }
                        if let Some(waiting) = waiting {
                            waiting.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            match spawned {
                Ok(_) => Some(StdoutWriter {
                    lines,
                    waiting: std::sync::atomic::AtomicUsize::new(0),
                }),
                Err(e) => {
                    warn!(cause = %e, "cannot start writing alerts to stdout");
                    None
                }
            }
        });
        writer.as_ref().map(|writer| StdoutSink {
            writer,
            full: false,
        })
    }

    /// Waits at most `grace` for the lines handed over to be written.
    async fn close(&mut self, grace: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        while self
            .writer
            .waiting
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Hands `line` to the writing thread without waiting.
    fn send(&mut self, line: &str) {
        let waiting = &self.writer.waiting;
        waiting.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.writer.lines.try_send(line.to_string()) {
            Ok(()) => self.full = false,
            Err(e) => {
                waiting.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                if let std::sync::mpsc::TrySendError::Full(_) = e
                    && !std::mem::replace(&mut self.full, true)
                {
                    warn!(
                        "stdout is not being read: alerts are not copied there until it is (they are in the log)"
                    );
                }
                // Disconnected: the writer stopped on an error, and said which.
            }
        }
    }
}

/// What one delivery round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub written: usize,
    /// Pending alerts found already in the log (a crash between write and mark).
    pub already_logged: usize,
}

/// Delivers every pending alert. `store` is locked only around each SQL call.
pub async fn deliver_pending(
    store: &std::sync::Mutex<Store>,
    sinks: &mut Sinks,
) -> Result<Delivered, DeliveryError> {
    let mut report = Delivered::default();
    loop {
        let batch = lock(store).pending_alerts(256)?;
        if batch.is_empty() {
            return Ok(report);
        }
        for pending in batch {
            let now = chrono::Utc::now().timestamp();
            // Learn what the log already holds before deciding what to write.
            sinks.log.scan().map_err(|cause| DeliveryError::Log {
                path: sinks.log.path().display().to_string(),
                cause,
            })?;
            let alert = serde_json::from_str::<Alert>(&pending.json);
            if let Err(e) = &alert {
                error!(id = %pending.id, cause = %e, "stored alert is not valid alert JSON");
            }
            // Queued for the webhooks in the same step that marks it logged.
            let hooks: Vec<&str> = alert.as_ref().map_or(Vec::new(), |alert| {
                sinks
                    .webhooks
                    .iter()
                    .filter(|h| h.wants(alert))
                    .map(|h| h.url())
                    .collect()
            });
            let logged = sinks.log.contains(&pending.id);
            if !logged {
                sinks
                    .log
                    .append(&pending.id, &pending.json)
                    .map_err(|cause| DeliveryError::Log {
                        path: sinks.log.path().display().to_string(),
                        cause,
                    })?;
            }
            lock(store).mark_delivered_queueing(&pending.id, now, &hooks)?;
            for hook in sinks.webhooks.iter().filter(|h| hooks.contains(&h.url())) {
                hook.wake();
            }
            if logged {
                report.already_logged += 1;
                continue;
            }
            report.written += 1;

            if let Some(stdout) = sinks.stdout.as_mut() {
                stdout.send(&pending.json);
            }
            let Ok(alert) = alert else {
                continue;
            };
            if let Some(desktop) = sinks.desktop.as_mut()
                && !alert.shadow
                && alert.severity >= sinks.min_severity
            {
                desktop.notify(&alert).await;
            }
            // Shadow rules are logged, never sent anywhere else.
            if alert.shadow {
                continue;
            }
            if let Some(exec) = sinks.exec.as_ref() {
                exec.send(&alert, &pending.json);
            }
        }
    }
}

/// Locks the store; a poisoned lock still holds a usable connection, because
/// every store method leaves SQLite consistent even if a caller panicked.
pub fn lock(store: &std::sync::Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One alert as a line for humans: time, severity, rule, item title, feed, link.
pub fn pretty_line(alert: &Alert, color: bool) -> String {
    let (on, off) = if color {
        let code = match alert.severity {
            Severity::Critical => "1;31",
            Severity::High => "31",
            Severity::Medium => "33",
            Severity::Low => "36",
            Severity::Info => "2",
        };
        (format!("\x1b[{code}m"), "\x1b[0m")
    } else {
        (String::new(), "")
    };
    let feed = alert
        .item
        .feed
        .name
        .as_deref()
        .unwrap_or(&alert.item.feed.url);
    format!(
        "{} {on}{:<8}{off} {:<20} {} — {}  {}",
        sanitize_terminal(&alert.ts),
        alert.severity.as_str(),
        sanitize_terminal(&alert.rule),
        sanitize_terminal(&alert.item.title),
        sanitize_terminal(feed),
        sanitize_terminal(alert.item.link.as_deref().unwrap_or("")),
    )
}
