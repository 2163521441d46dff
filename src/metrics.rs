//! Metrics: counters the pipeline updates, and an optional HTTP endpoint that
//! serves them in the Prometheus text format (`/metrics`) with a liveness
//! check (`/healthz`).
//!
//! Counters are plain atomics in a [`Metrics`] value shared by reference (no
//! global registry); gauges that the state already knows (feeds by status,
//! pending alerts) are read from SQLite at scrape time. The endpoint is off
//! unless `[metrics] listen` is set, and meant for 127.0.0.1.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::pipeline::SharedStore;
use crate::sinks::lock;

/// Upper bounds (seconds) of the fetch-latency histogram buckets.
const LATENCY_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// `[metrics]` in the config.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address to serve /metrics and /healthz on, e.g. "127.0.0.1:9899".
    pub listen: Option<SocketAddr>,
}

/// How a fetch ended, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchResult {
    Ok,
    NotModified,
    Failed,
}

/// The daemon's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    fetch_ok: AtomicU64,
    fetch_not_modified: AtomicU64,
    fetch_failed: AtomicU64,
    bytes: AtomicU64,
    items: AtomicU64,
    new_items: AtomicU64,
    alerts: Mutex<BTreeMap<String, u64>>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    /// Fetches so far, whatever their result.
    pub fn fetches(&self) -> u64 {
        self.fetch_ok.load(Ordering::Relaxed)
            + self.fetch_not_modified.load(Ordering::Relaxed)
            + self.fetch_failed.load(Ordering::Relaxed)
    }

    /// Counts one fetch and its duration.
    pub fn fetch(&self, result: FetchResult, took: Duration, bytes: usize) {
        let counter = match result {
            FetchResult::Ok => &self.fetch_ok,
            FetchResult::NotModified => &self.fetch_not_modified,
            FetchResult::Failed => &self.fetch_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// Counts parsed items and the new ones among them.
    pub fn items(&self, parsed: usize, new: usize) {
        self.items.fetch_add(parsed as u64, Ordering::Relaxed);
        self.new_items.fetch_add(new as u64, Ordering::Relaxed);
    }

    /// Counts an alert raised by `rule`.
    pub fn alert(&self, rule: &str) {
        let mut alerts = self.alerts.lock().unwrap_or_else(|p| p.into_inner());
        *alerts.entry(rule.to_string()).or_default() += 1;
    }

    /// The Prometheus text exposition of the counters plus the state's gauges.
    pub fn render(&self, state: &StateGauges) -> String {
        let (feeds_by_status, pending) = (&state.feeds_by_status, state.pending);
        let mut out = String::new();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP newswatch_feeds Feeds in the state by health.");
        let _ = writeln!(out, "# TYPE newswatch_feeds gauge");
        for (status, n) in feeds_by_status {
            let _ = writeln!(out, "newswatch_feeds{{status=\"{status}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP newswatch_fetches_total Feed fetches by result."
        );
        let _ = writeln!(out, "# TYPE newswatch_fetches_total counter");
        for (result, counter) in [
            ("ok", &self.fetch_ok),
            ("not_modified", &self.fetch_not_modified),
            ("failed", &self.fetch_failed),
        ] {
            let _ = writeln!(
                out,
                "newswatch_fetches_total{{result=\"{result}\"}} {}",
                load(counter)
            );
        }
        let _ = writeln!(
            out,
            "# HELP newswatch_fetch_bytes_total Response bytes received."
        );
        let _ = writeln!(out, "# TYPE newswatch_fetch_bytes_total counter");
        let _ = writeln!(out, "newswatch_fetch_bytes_total {}", load(&self.bytes));
        let _ = writeln!(out, "# HELP newswatch_items_total Items parsed from feeds.");
        let _ = writeln!(out, "# TYPE newswatch_items_total counter");
        let _ = writeln!(out, "newswatch_items_total {}", load(&self.items));
        let _ = writeln!(
            out,
            "# HELP newswatch_new_items_total Items seen for the first time."
        );
        let _ = writeln!(out, "# TYPE newswatch_new_items_total counter");
        let _ = writeln!(out, "newswatch_new_items_total {}", load(&self.new_items));
        let _ = writeln!(out, "# HELP newswatch_alerts_total Alerts raised, by rule.");
        let _ = writeln!(out, "# TYPE newswatch_alerts_total counter");
        let alerts = self.alerts.lock().unwrap_or_else(|p| p.into_inner());
        for (rule, n) in alerts.iter() {
            let _ = writeln!(
                out,
                "newswatch_alerts_total{{rule=\"{}\"}} {n}",
                label_value(rule)
            );
        }
        let _ = writeln!(
            out,
            "# HELP newswatch_pending_alerts Alerts recorded but not yet in the log."
        );
        let _ = writeln!(out, "# TYPE newswatch_pending_alerts gauge");
        let _ = writeln!(out, "newswatch_pending_alerts {pending}");
        let _ = writeln!(
            out,
            "# HELP newswatch_webhook_queued_alerts Alerts in the log still waiting for a webhook."
        );
        let _ = writeln!(out, "# TYPE newswatch_webhook_queued_alerts gauge");
        for (url, n) in &state.webhook_queued {
            let _ = writeln!(
                out,
                "newswatch_webhook_queued_alerts{{url=\"{}\"}} {n}",
                label_value(url)
            );
        }
        let _ = writeln!(
            out,
            "# HELP newswatch_fetch_duration_seconds Time to fetch a feed."
        );
        let _ = writeln!(out, "# TYPE newswatch_fetch_duration_seconds histogram");
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(
                out,
                "newswatch_fetch_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                load(bucket)
            );
        }
        let count = load(&self.latency_count);
        let _ = writeln!(
            out,
            "newswatch_fetch_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = load(&self.latency_sum_micros) as f64 / 1e6;
        let _ = writeln!(out, "newswatch_fetch_duration_seconds_sum {sum}");
        let _ = writeln!(out, "newswatch_fetch_duration_seconds_count {count}");
        out
    }
}

/// Feeds in the state by status, and the number of pending alerts.
/// `text` escaped for a Prometheus label value.
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// What `/metrics` reads from the state at each request.
#[derive(Debug, Default)]
pub struct StateGauges {
    pub feeds_by_status: BTreeMap<&'static str, u64>,
    /// Alerts recorded but not yet in the log.
    pub pending: u64,
    /// Alerts waiting for each webhook, by URL.
    pub webhook_queued: Vec<(String, u64)>,
}

fn state_gauges(store: &SharedStore) -> Result<StateGauges, String> {
    let store = lock(store);
    let mut by_status: BTreeMap<&'static str, u64> = ["ok", "failing", "disabled"]
        .into_iter()
        .map(|s| (s, 0))
        .collect();
    for feed in store.feed_states().map_err(|e| e.to_string())? {
        *by_status.entry(feed.status()).or_default() += 1;
    }
    Ok(StateGauges {
        feeds_by_status: by_status,
        pending: store.pending_count().map_err(|e| e.to_string())?,
        webhook_queued: store.webhook_backlog().map_err(|e| e.to_string())?,
    })
}

/// Serves /metrics and /healthz on `addr` until `stop` is cancelled.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    store: SharedStore,
    stop: CancellationToken,
) {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            warn!(%addr, cause = %e, "cannot serve metrics");
            return;
        }
    };
    if !addr.ip().is_loopback() {
        warn!(%addr, "the metrics endpoint listens beyond this machine");
    }
    info!(%addr, "serving /metrics and /healthz");
    loop {
        let (stream, _) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    warn!(cause = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        let store = store.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let metrics = metrics.clone();
                    let store = store.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(respond(&request, &metrics, &store).await)
                    }
                });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            // A scrape is small; a client that stalls is cut off.
            let _ = tokio::time::timeout(Duration::from_secs(30), connection).await;
        });
    }
}

async fn respond(
    request: &Request<hyper::body::Incoming>,
    metrics: &Metrics,
    store: &SharedStore,
) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, body: String, kind: &'static str| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(kind),
        );
        response
    };
    if request.method() != hyper::Method::GET {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "GET only\n".into(),
            "text/plain",
        );
    }
    let store = store.clone();
    let gauges = tokio::task::spawn_blocking(move || state_gauges(&store))
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    match (request.uri().path(), gauges) {
        ("/metrics", Ok(state)) => text(
            StatusCode::OK,
            metrics.render(&state),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        ("/healthz", Ok(_)) => text(StatusCode::OK, "ok\n".into(), "text/plain"),
        ("/metrics" | "/healthz", Err(e)) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("state unavailable: {e}\n"),
            "text/plain",
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics or /healthz\n".into(),
            "text/plain",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.fetch(FetchResult::Ok, Duration::from_millis(80), 1000);
        m.fetch(FetchResult::Failed, Duration::from_secs(3), 0);
        m.alert("troop-deployment");
        m.alert("troop-deployment");
        let text = m.render(&StateGauges {
            feeds_by_status: BTreeMap::from([("ok", 2), ("failing", 1)]),
            pending: 4,
            webhook_queued: vec![("https://hooks.example.org/\"x\"".into(), 3)],
        });
        assert!(
            text.contains("newswatch_feeds{status=\"failing\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("newswatch_fetches_total{result=\"ok\"} 1\n"));
        assert!(text.contains("newswatch_alerts_total{rule=\"troop-deployment\"} 2\n"));
        assert!(text.contains("newswatch_pending_alerts 4\n"));
        assert!(
            text.contains(
                "newswatch_webhook_queued_alerts{url=\"https://hooks.example.org/\\\"x\\\"\"} 3\n"
            ),
            "{text}"
        );
        assert!(text.contains("newswatch_fetch_duration_seconds_bucket{le=\"0.1\"} 1\n"));
        assert!(text.contains("newswatch_fetch_duration_seconds_bucket{le=\"5\"} 2\n"));
        assert!(text.contains("newswatch_fetch_duration_seconds_count 2\n"));
    }
}
