//! The webhook sink: POSTs each alert to a URL, from a task of its own.
//!
//! Delivery to the log never waits for a webhook: alerts are queued (bounded)
//! and a background task posts them with a timeout, retrying failures with
//! exponential backoff. The token for an `Authorization`-style header comes
//! from an environment variable (or, discouraged, the config file). Two body
//! formats: the alert's JSON line, or ntfy's (plain text plus Title, Priority,
//! Tags and Click headers).

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::alerts::Alert;
use crate::config::{HumanDuration, Severity};

/// Alerts waiting for a webhook at most; beyond, new ones are dropped (and
/// counted) rather than letting memory grow while an endpoint is down.
const QUEUE: usize = 1024;
const ATTEMPTS: u32 = 5;

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

struct Job {
    alert: Alert,
    json: String,
}

/// A running webhook: a queue and the task that drains it.
pub struct WebhookSink {
    url: String,
    min_severity: Severity,
    queue: Option<mpsc::Sender<Job>>,
    task: Option<JoinHandle<()>>,
}

impl WebhookSink {
    /// Starts the posting task (needs a tokio runtime).
    pub fn start(config: &WebhookConfig, client: reqwest::Client) -> WebhookSink {
        let (tx, rx) = mpsc::channel(QUEUE);
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
        };
        WebhookSink {
            url: config.url.clone(),
            min_severity: config.min_severity,
            queue: Some(tx),
            task: Some(tokio::spawn(poster.run(rx))),
        }
    }

    /// Queues `alert` for posting.
    pub fn send(&self, alert: &Alert, json: &str) {
        if alert.severity < self.min_severity {
            return;
        }
        let Some(queue) = &self.queue else {
            return;
        };
        let job = Job {
            alert: alert.clone(),
            json: json.to_string(),
        };
        if queue.try_send(job).is_err() {
            warn!(url = %self.url, alert = %alert.id, "webhook queue full; alert not posted (it is in the log)");
        }
    }

    /// Waits until every queued alert has been posted or given up on.
    pub async fn close(&mut self) {
        self.queue = None;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

struct Poster {
    url: String,
    format: WebhookFormat,
    auth: Option<(HeaderName, HeaderValue)>,
    timeout: Duration,
    client: reqwest::Client,
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

impl Poster {
    async fn run(self, mut rx: mpsc::Receiver<Job>) {
        while let Some(job) = rx.recv().await {
            let mut delay = Duration::from_secs(1);
            for attempt in 1..=ATTEMPTS {
                match self.post(&job).await {
                    Ok(()) => {
                        debug!(url = %self.url, alert = %job.alert.id, "webhook delivered");
                        break;
                    }
                    Err(e) if attempt == ATTEMPTS => {
                        warn!(url = %self.url, alert = %job.alert.id, cause = %e, "webhook failed {ATTEMPTS} times; giving up on this alert (it is in the log)");
                    }
                    Err(e) => {
                        debug!(url = %self.url, cause = %e, attempt, "webhook failed; retrying");
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                }
            }
        }
    }

    async fn post(&self, job: &Job) -> Result<(), String> {
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
                self.client.post(&self.url).body(job.json.clone())
            }
            WebhookFormat::Ntfy => {
                let alert = &job.alert;
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
            .map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", response.status().as_u16()))
        }
    }
}
