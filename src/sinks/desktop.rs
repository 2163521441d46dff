//! Desktop notifications over D-Bus (org.freedesktop.Notifications).
//!
//! Best effort by design: with no session bus or no notification server the
//! sink warns once and carries on; the alert log already holds the alert.

use std::time::Duration;

use notify_rust::{Notification, Timeout, Urgency};
use tracing::{info, warn};

use crate::alerts::Alert;
use crate::config::Severity;
use crate::text::sanitize_terminal;

/// How long to wait for the notification server before giving up.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends alerts as desktop notifications.
#[derive(Debug, Default)]
pub struct DesktopSink {
    failing: bool,
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
pub fn notification(alert: &Alert) -> Notification {
    let feed = alert
        .item
        .feed
        .name
        .as_deref()
        .unwrap_or(&alert.item.feed.url);
    let when = alert.item.published.as_deref().unwrap_or(&alert.ts);
    let body = format!(
        "{}\n{} · {}",
        escape_markup(&alert.item.title),
        escape_markup(feed),
        escape_markup(when)
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

impl DesktopSink {
    pub fn new() -> DesktopSink {
        DesktopSink::default()
    }

    /// Shows `alert`; failures are logged once until a notification succeeds again.
    pub async fn notify(&mut self, alert: &Alert) {
        let n = notification(alert);
        let result = tokio::time::timeout(NOTIFY_TIMEOUT, n.show_async()).await;
        let error = match result {
            Ok(Ok(_handle)) => {
                if self.failing {
                    info!("desktop notifications work again");
                }
                self.failing = false;
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!(
                "no answer from the notification server within {}s",
                NOTIFY_TIMEOUT.as_secs()
            ),
        };
        if !self.failing {
            warn!(cause = %error, "desktop notifications unavailable; alerts still go to the log");
        }
        self.failing = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape_markup("<b>Tom & \"Jerry\"</b>\u{1b}[31m"),
            "&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt;"
        );
    }
}
