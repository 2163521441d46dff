//! The webhook sink: POSTs each alert to a URL, from a task of its own.
//!
//! Delivery to the log never waits for a webhook. An alert is queued for
//! each webhook in the state, in the transaction that marks it delivered to
//! the log, and a background task per webhook posts what is due, with a
//! timeout. A failed post is tried again with exponential backoff (or after
//! the server's `Retry-After`), across restarts, for up to three days, and
//! a failing endpoint gets one attempt per pause, not one per alert; a
//! post the server refuses for good (a 4xx other than 408 and 429, or a
//! redirect, which a POST cannot follow) is given up at once. The token for
//! an `Authorization`-style header comes from an environment variable (or,
//! discouraged, the config file). Two body formats: the alert's JSON line,
//! or ntfy's (plain text plus Title, Priority, Tags and Click headers).

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::alerts::Alert;
use crate::config::{HumanDuration, Severity};
use crate::pipeline::SharedStore;
use crate::sinks::lock;
use crate::store::QueuedPost;

/// How long an alert waits for a webhook that keeps failing before it is
/// given up on (it is in the log).
const MAX_WAIT: Duration = Duration::from_secs(3 * 24 * 3600);
/// The longest pause between two attempts, and the longest `Retry-After`
/// honoured.
const MAX_BACKOFF: Duration = Duration::from_secs(600);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// Alerts taken from the queue at a time.
const BATCH: usize = 32;

/// How the alert is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// The alert's JSON line as the body (`application/json`).
    #[default]
    Json,
    /// ntfy.sh: the item title as the body; rule title, priority, tags, link as headers.
    Ntfy,
}

/// `[[webhooks]]` in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    #[serde(default)]
    pub format: WebhookFormat,
    /// Environment variable holding the token.
    pub token_env: Option<String>,
    /// The token itself (prefer `token_env`: config files get copied around).
    pub token: Option<String>,
    /// Header carrying the token, with `scheme` before it.
    #[serde(default = "default_header")]
    pub header: String,
    #[serde(default = "default_scheme")]
    pub scheme: String,
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

fn default_header() -> String {
    "Authorization".into()
}
fn default_scheme() -> String {
    "Bearer".into()
}
fn default_min_severity() -> Severity {
    Severity::Info
}
fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

impl WebhookConfig {
    /// The token from the environment variable, else from the file.
    pub fn resolved_token(&self) -> Option<String> {
        self.token_env
            .as_ref()
            .and_then(|var| std::env::var(var).ok())
            .filter(|t| !t.is_empty())
            .or_else(|| self.token.clone())
    }
}

/// A running webhook: the task that posts what its queue in the state holds.
pub struct WebhookSink {
    url: String,
    min_severity: Severity,
    /// Something was queued.
    wake: Arc<Notify>,
    /// Post what is due once more, then stop.
    finish: CancellationToken,
    /// Stop now (an attempt in flight is abandoned; the alert stays queued).
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl WebhookSink {
    /// Starts the posting task (needs a tokio runtime). `client` must not
    /// follow redirects.
    pub fn start(
        config: &WebhookConfig,
        client: reqwest::Client,
        store: SharedStore,
    ) -> WebhookSink {
        let poster = Poster {
            url: config.url.clone(),
            format: config.format,
            auth: config.resolved_token().and_then(|token| {
                let name = HeaderName::from_bytes(config.header.as_bytes()).ok()?;
                let value = if config.scheme.is_empty() {
                    token
                } else {
                    format!("{} {token}", config.scheme)
                };
                Some((name, HeaderValue::from_str(&value).ok()?))
            }),
            timeout: config.timeout.0,
            client,
            store,
        };
        let (wake, finish, stop) = (
            Arc::new(Notify::new()),
            CancellationToken::new(),
            CancellationToken::new(),
        );
        let task = tokio::spawn(poster.run(wake.clone(), finish.clone(), stop.clone()));
        WebhookSink {
            url: config.url.clone(),
            min_severity: config.min_severity,
            wake,
            finish,
            stop,
            task: Some(task),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether this webhook posts `alert`.
    pub fn wants(&self, alert: &Alert) -> bool {
        !alert.shadow && alert.severity >= self.min_severity
    }

    /// Tells the task that alerts were queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Posts what is due once more, waiting at most `grace`, then stops
    /// the task. Whatever is not posted stays queued for the next start.
    pub async fn close(&mut self, grace: Duration) {
        self.finish.cancel();
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(grace, &mut task).await.is_err()
        {
            self.stop.cancel();
            let _ = task.await;
            info!(url = %self.url, "webhook: stopped with alerts still queued; they are posted after the next start");
        }
    }
}

/// Why a post did not go through.
#[derive(Debug)]
enum PostError {
    /// Worth trying again, after the server's `Retry-After` if it sent one.
    Transient(String, Option<Duration>),
    /// The server refused it for good.
    Refused(String),
}

struct Poster {
    url: String,
    format: WebhookFormat,
    auth: Option<(HeaderName, HeaderValue)>,
    timeout: Duration,
    client: reqwest::Client,
    store: SharedStore,
}

fn ntfy_priority(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "5",
        Severity::High => "4",
        Severity::Medium => "3",
        Severity::Low => "2",
        Severity::Info => "1",
    }
}

/// The pause after the `attempts`-th failure in a row: 1 s, 2 s, 4 s, …,
/// at most [`MAX_BACKOFF`], or the server's `Retry-After` if longer.
fn backoff(attempts: i64, retry_after: Option<Duration>) -> Duration {
    let exponential = Duration::from_secs(1u64 << attempts.clamp(1, 20).saturating_sub(1));
    exponential
        .min(MAX_BACKOFF)
        .max(retry_after.unwrap_or_default().min(MAX_RETRY_AFTER))
}

impl Poster {
    async fn run(self, wake: Arc<Notify>, finish: CancellationToken, stop: CancellationToken) {
        // Logged when posting starts or stops failing, not per attempt.
        let mut failing = false;
        // Failures in a row: while the endpoint fails, it gets one attempt
        // per pause (growing like an alert's own), not one per queued alert.
        let mut failures: i64 = 0;
        loop {
            let now = chrono::Utc::now().timestamp();
            let due = match lock(&self.store).due_posts(&self.url, now, BATCH) {
                Ok(due) => due,
                Err(e) => {
                    warn!(url = %self.url, cause = %e, "webhook: cannot read its queue");
                    Vec::new()
                }
            };
            if due.is_empty() {
                // Nothing due: done if finishing, else sleep until the next
                // attempt or new alerts. (A failed attempt is never due
                // again at once, so finishing ends after one pass.)
                if finish.is_cancelled() {
                    return;
                }
                let next = lock(&self.store).next_post_due(&self.url).ok().flatten();
                let wait = next.map_or(3600, |t| (t - now).clamp(1, 3600));
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = finish.cancelled() => {}
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(wait as u64)) => {}
                }
                continue;
            }
            for post in due {
                let result = tokio::select! {
                    result = self.post(&post) => result,
                    _ = stop.cancelled() => return,
                };
                let now = chrono::Utc::now().timestamp();
                let mut pause = None;
                let outcome = match result {
                    Ok(()) => {
                        failures = 0;
                        debug!(url = %self.url, alert = %post.alert, "webhook delivered");
                        if std::mem::take(&mut failing) {
                            info!(url = %self.url, "webhook: posting works again");
                        }
                        lock(&self.store).post_done(&self.url, &post.alert)
                    }
                    Err(PostError::Refused(cause)) => {
                        warn!(url = %self.url, alert = %post.alert, %cause, "webhook refused the alert; not posting it again (it is in the log)");
                        lock(&self.store).post_done(&self.url, &post.alert)
                    }
                    Err(PostError::Transient(cause, _))
                        if now - post.queued >= MAX_WAIT.as_secs() as i64 =>
                    {
                        warn!(url = %self.url, alert = %post.alert, %cause, "webhook: giving up on an alert after three days of failures (it is in the log)");
                        lock(&self.store).post_done(&self.url, &post.alert)
                    }
                    Err(PostError::Transient(cause, retry_after)) => {
                        if !std::mem::replace(&mut failing, true) {
                            warn!(url = %self.url, %cause, "webhook failing; its alerts wait in the state and are tried again with backoff");
                        } else {
                            debug!(url = %self.url, %cause, attempts = post.attempts + 1, "webhook failed again");
                        }
                        let next = now + backoff(post.attempts + 1, retry_after).as_secs() as i64;
                        failures += 1;
                        pause = Some(backoff(failures, retry_after));
                        lock(&self.store).post_failed(&self.url, &post.alert, next, &cause)
                    }
                };
                if let Err(e) = outcome {
                    warn!(url = %self.url, cause = %e, "webhook: cannot update its queue");
                }
                if let Some(pause) = pause {
                    // Finishing does not wait out a failing endpoint: what
                    // is left stays queued for the next start.
                    if finish.is_cancelled() {
                        return;
                    }
                    tokio::select! {
                        _ = finish.cancelled() => return,
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(pause) => {}
                    }
                    break;
                }
            }
        }
    }

    async fn post(&self, post: &QueuedPost) -> Result<(), PostError> {
        let mut headers = HeaderMap::new();
        if let Some((name, value)) = &self.auth {
            headers.insert(name.clone(), value.clone());
        }
        let request = match self.format {
            WebhookFormat::Json => {
                headers.insert(
                    reqwest::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                self.client.post(&self.url).body(post.json.clone())
            }
            WebhookFormat::Ntfy => {
                let alert: Alert = serde_json::from_str(&post.json).map_err(|e| {
                    PostError::Refused(format!("the stored alert is not alert JSON: {e}"))
                })?;
                let header =
                    |text: &str| HeaderValue::from_str(&crate::text::sanitize_terminal(text)).ok();
                if let Some(v) = header(&alert.title) {
                    headers.insert("Title", v);
                }
                headers.insert(
                    "Priority",
                    HeaderValue::from_static(ntfy_priority(alert.severity)),
                );
                if let Some(v) = header(&alert.rule) {
                    headers.insert("Tags", v);
                }
                if let Some(v) = alert.item.link.as_deref().and_then(header) {
                    headers.insert("Click", v);
                }
                let feed = alert
                    .item
                    .feed
                    .name
                    .as_deref()
                    .unwrap_or(&alert.item.feed.url);
                self.client
                    .post(&self.url)
                    .body(format!("{}\n{feed}", alert.item.title))
            }
        };
        let response = request
            .headers(headers)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| PostError::Transient(crate::fetch::error_chain(&e), None))?;
        let status = response.status();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        if status.is_success() {
            Ok(())
        } else if status.is_redirection() {
            Err(PostError::Refused(format!(
                "HTTP {}: redirected to {}, which a POST does not follow; configure that URL",
                status.as_u16(),
                header(reqwest::header::LOCATION).unwrap_or_else(|| "nowhere".into())
            )))
        } else if status.is_client_error() && !matches!(status.as_u16(), 408 | 425 | 429) {
            Err(PostError::Refused(format!("HTTP {}", status.as_u16())))
        } else {
            let retry_after = header(reqwest::header::RETRY_AFTER)
                .as_deref()
                .and_then(crate::fetch::parse_retry_after);
            Err(PostError::Transient(
                format!("HTTP {}", status.as_u16()),
                retry_after,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap_and_honours_retry_after() {
        let secs = |attempts, retry_after: Option<u64>| {
            backoff(attempts, retry_after.map(Duration::from_secs)).as_secs()
        };
        assert_eq!([secs(1, None), secs(2, None), secs(3, None)], [1, 2, 4]);
        assert_eq!(secs(30, None), MAX_BACKOFF.as_secs());
        assert_eq!(secs(1, Some(5)), 5);
        assert_eq!(secs(4, Some(5)), 8);
        assert_eq!(secs(1, Some(100_000)), MAX_RETRY_AFTER.as_secs());
    }
}
