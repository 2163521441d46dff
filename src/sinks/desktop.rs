//! Desktop notifications over D-Bus (org.freedesktop.Notifications).
//!
//! Best effort by design: with no session bus or no notification server the
//! sink warns once and carries on; the alert log already holds the alert.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use notify_rust::{Notification, Timeout, Urgency};
use tracing::{info, warn};

use crate::alerts::Alert;
use crate::config::Severity;
use crate::text::sanitize_terminal;

/// How long to wait for the notification server before giving up.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long notifications pause after the server failed to answer in time.
const PAUSE_AFTER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a notification's "open" action stays armed.
const CLICK_WAIT: Duration = Duration::from_secs(3600);
/// Notifications waiting for a click at most; later ones get no action.
const MAX_WAITING: usize = 32;

/// The window of the notification budget.
const BUDGET_WINDOW: Duration = Duration::from_secs(60);

/// Sends alerts as desktop notifications, at most `per_minute` a minute; the
/// rest are held and summed up in one notification when the budget allows.
#[derive(Debug, Default)]
pub struct DesktopSink {
    failing: bool,
    /// Whether the server renders body markup; asked once per connection.
    markup: Option<bool>,
    /// Whether the server shows actions (buttons, or a click on the bubble).
    actions: bool,
    /// The program that opens an alert's link when its notification is clicked.
    open_with: Vec<String>,
    /// Notifications still waiting for a click; bounded.
    waiting: Arc<AtomicUsize>,
    /// After a server that did not answer, notifications pause until then.
    paused_until: Option<Instant>,
    per_minute: u32,
    shown: VecDeque<Instant>,
    /// Alerts held back by the budget, per rule.
    held: BTreeMap<String, u32>,
}

/// Escapes text for the notification body, which servers may read as markup.
pub fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in sanitize_terminal(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The notification for an alert (summary, body, urgency, timeout).
/// The notification for an alert (summary, body, urgency, timeout). `markup`
/// says whether the server reads the body as markup (then it is escaped).
pub fn notification(alert: &Alert, markup: bool) -> Notification {
    let escape: fn(&str) -> String = if markup {
        escape_markup
    } else {
        sanitize_terminal
    };
    let feed = alert
        .item
        .feed
        .name
        .as_deref()
        .unwrap_or(&alert.item.feed.url);
    let when = alert.item.published.as_deref().unwrap_or(&alert.ts);
    let body = format!(
        "{}\n{} · {}",
        escape(&alert.item.title),
        escape(feed),
        escape(when)
    );
    let (urgency, timeout) = match alert.severity {
        Severity::Critical => (Urgency::Critical, Timeout::Never),
        Severity::High => (Urgency::Normal, Timeout::Milliseconds(30_000)),
        Severity::Medium => (Urgency::Normal, Timeout::Default),
        Severity::Low | Severity::Info => (Urgency::Low, Timeout::Default),
    };
    let mut n = Notification::new();
    n.appname("newswatch")
        .summary(&sanitize_terminal(&alert.title))
        .body(&body)
        .icon("dialog-information")
        .urgency(urgency)
        .timeout(timeout);
    n
}

/// The notification that sums up held-back alerts: "12 more alerts" with
/// "troop-deployment ×7, eu-summit ×5".
pub fn summary_notification(held: &BTreeMap<String, u32>, markup: bool) -> Notification {
    let escape: fn(&str) -> String = if markup {
        escape_markup
    } else {
        sanitize_terminal
    };
    let total: u32 = held.values().sum();
    let mut by_count: Vec<(&String, &u32)> = held.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let body = by_count
        .iter()
        .map(|(rule, n)| format!("{} ×{n}", escape(rule)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut n = Notification::new();
    n.appname("newswatch")
        .summary(&format!(
            "{total} more alert{}",
            if total == 1 { "" } else { "s" }
        ))
        .body(&format!("{body}\nSee newswatch tail for all of them."))
        .icon("dialog-information")
        .urgency(Urgency::Normal);
    n
}

impl DesktopSink {
    /// A sink showing at most `per_minute` notifications a minute (0: no limit).
    pub fn new(per_minute: u32) -> DesktopSink {
        DesktopSink {
            per_minute,
            ..DesktopSink::default()
        }
    }

    /// Clicking a notification opens the alert's link with this program
    /// (e.g. `["xdg-open"]`; the link is appended); empty: no action.
    pub fn open_links_with(mut self, program: Vec<String>) -> DesktopSink {
        self.open_with = program;
        self
    }

    fn budget_left(&mut self) -> bool {
        let now = Instant::now();
        while self
            .shown
            .front()
            .is_some_and(|t| now.duration_since(*t) >= BUDGET_WINDOW)
        {
            self.shown.pop_front();
        }
        self.per_minute == 0 || (self.shown.len() as u32) < self.per_minute
    }

    /// Whether alerts are held back waiting for a summary.
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Shows `alert`, or holds it back when the budget is spent.
    pub async fn notify(&mut self, alert: &Alert) {
        // Held alerts go first so the summary precedes newer single alerts.
        self.flush_held(false).await;
        if !self.budget_left() || self.holding() {
            *self.held.entry(alert.rule.clone()).or_default() += 1;
            return;
        }
        let Some(markup) = self.ready().await else {
            return;
        };
        let mut n = notification(alert, markup);
        let link = alert
            .item
            .link
            .as_deref()
            .filter(|l| l.starts_with("https://") || l.starts_with("http://"))
            .filter(|_| self.actions && !self.open_with.is_empty())
            .filter(|_| self.waiting.load(Ordering::Relaxed) < MAX_WAITING);
        if link.is_some() {
            n.action("default", "Open");
        }
        if let Some(handle) = self.show(n).await
            && let Some(link) = link
        {
            self.open_on_click(handle, link.to_string());
        }
    }

    /// Waits (in the background, bounded) for a click on the notification and
    /// opens `link` with the configured program.
    fn open_on_click(&self, handle: notify_rust::NotificationHandle, link: String) {
        let program = self.open_with.clone();
        let waiting = self.waiting.clone();
        waiting.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let mut clicked = false;
            let wait = handle.wait_for_action_async(|response| {
                clicked = matches!(response, notify_rust::NotificationResponse::Default)
                    || matches!(response, notify_rust::NotificationResponse::Action(a) if a == "default");
            });
            let _ = tokio::time::timeout(CLICK_WAIT, wait).await;
            waiting.fetch_sub(1, Ordering::Relaxed);
            if !clicked {
                return;
            }
            let Some((name, args)) = program.split_first() else {
                return;
            };
            match tokio::process::Command::new(name)
                .args(args)
                .arg(&link)
                .spawn()
            {
                Ok(mut child) => {
                    let _ = child.wait().await;
                }
                Err(e) => warn!(program = %name, cause = %e, "cannot open the alert's link"),
            }
        });
    }

    /// Whether a notification may be sent now, and whether the server reads
    /// body markup; `None` while paused or when the server cannot be asked.
    async fn ready(&mut self) -> Option<bool> {
        if let Some(until) = self.paused_until {
            if Instant::now() < until {
                return None;
            }
            self.paused_until = None;
        }
        if let Some(markup) = self.markup {
            return Some(markup);
        }
        match tokio::time::timeout(NOTIFY_TIMEOUT, server_capabilities()).await {
            Ok(Ok(capabilities)) => {
                let markup = capabilities.iter().any(|c| c == "body-markup");
                self.actions = capabilities.iter().any(|c| c == "actions");
                self.markup = Some(markup);
                Some(markup)
            }
            Ok(Err(e)) => {
                self.failed(e.to_string(), false);
                None
            }
            Err(_) => {
                self.failed(self.timeout_message(), true);
                None
            }
        }
    }

    fn timeout_message(&self) -> String {
        format!(
            "no answer from the notification server within {}s",
            NOTIFY_TIMEOUT.as_secs()
        )
    }

    /// Records a failure: warn once; after a timeout, pause so that a hung
    /// server does not slow every delivery by the timeout.
    fn failed(&mut self, error: String, timed_out: bool) {
        if !self.failing {
            warn!(cause = %error, "desktop notifications unavailable; alerts still go to the log");
        }
        self.failing = true;
        self.markup = None;
        if timed_out {
            self.paused_until = Some(Instant::now() + PAUSE_AFTER_TIMEOUT);
        }
    }

    /// Shows the summary of held alerts if the budget allows (or `force`).
    pub async fn flush_held(&mut self, force: bool) {
        if self.held.is_empty() || !(force || self.budget_left()) {
            return;
        }
        let Some(markup) = self.ready().await else {
            return;
        };
        let summary = summary_notification(&self.held, markup);
        self.held.clear();
        self.show(summary).await;
    }

    /// Sends one notification; failures are logged once until one succeeds again.
    async fn show(&mut self, n: Notification) -> Option<notify_rust::NotificationHandle> {
        self.shown.push_back(Instant::now());
        let result = tokio::time::timeout(NOTIFY_TIMEOUT, n.show_async()).await;
        let error = match result {
            Ok(Ok(handle)) => {
                if self.failing {
                    info!("desktop notifications work again");
                }
                self.failing = false;
                return Some(handle);
            }
            Ok(Err(e)) => (e.to_string(), false),
            Err(_) => (self.timeout_message(), true),
        };
        self.failed(error.0, error.1);
        None
    }
}

/// Asks the notification server on the session bus what it supports.
async fn server_capabilities() -> zbus::Result<Vec<String>> {
    let connection = zbus::Connection::session().await?;
    let reply = connection
        .call_method(
            Some("org.freedesktop.Notifications"),
            "/org/freedesktop/Notifications",
            Some("org.freedesktop.Notifications"),
            "GetCapabilities",
            &(),
        )
        .await?;
    reply.body().deserialize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_rules() {
        let held = BTreeMap::from([
            ("eu-summit".to_string(), 5),
            ("troop-deployment".to_string(), 7),
        ]);
        let n = summary_notification(&held, true);
        assert_eq!(n.summary, "12 more alerts");
        assert!(
            n.body.starts_with("troop-deployment ×7, eu-summit ×5"),
            "{}",
            n.body
        );
    }

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape_markup("<b>Tom & \"Jerry\"</b>\u{1b}[31m"),
            "&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt;"
        );
    }
}
