//! One poll of one feed, through every stage: fetch → parse → normalize →
//! dedup → entities → rules → pending alerts.
//!
//! [`Pipeline::poll`] is what both `newswatch once` and the daemon's per-feed
//! tasks run. It ends with the atomic ingest of the store (items seen + alerts
//! pending in one transaction); delivery to sinks is a separate step
//! ([`crate::sinks::deliver_pending`]). A failing feed yields a [`PollError`]
//! naming the feed and the cause, recorded in the feed's state; it never
//! affects other feeds.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tracing::{debug, warn};

use crate::alerts::{AlertContext, story_id};
use crate::config::{Config, Feed};
use crate::document::Document;
use crate::feed::{FeedError, parse_feed};
use crate::fetch::{FetchError, FetchOutcome, Fetcher, Validators};
use crate::sinks::lock;
use crate::store::{PendingAlert, SeenItem, Store, StoreError};

/// A store shared between tasks.
pub type SharedStore = Arc<Mutex<Store>>;

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum PollCause {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Feed(#[from] FeedError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("processing task failed: {0}")]
    Task(String),
}

/// A failed poll, naming the feed.
#[derive(Debug, thiserror::Error)]
#[error("feed {url}: {cause}")]
pub struct PollError {
    pub url: String,
    #[source]
    pub cause: PollCause,
}

/// What a successful poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    pub not_modified: bool,
    pub items: usize,
    pub new_items: usize,
    pub alerts: usize,
    /// New items not alerted on because they predate the catch-up window.
    pub caught_up: usize,
}

/// The stages, wired for polling.
#[derive(Clone)]
pub struct Pipeline {
    pub config: Arc<Config>,
    pub fetcher: Fetcher,
    pub store: SharedStore,
}

impl Pipeline {
    /// Polls `feed` once and records the outcome (success or failure) in the state.
    pub async fn poll(&self, feed: &Feed) -> Result<PollReport, PollError> {
        let fail = |cause: PollCause| PollError {
            url: feed.url.clone(),
            cause,
        };
        let url = feed.url.clone();
        let state = self
            .with_store(move |s| s.feed_state(&url))
            .await
            .map_err(|e| fail(e.into()))?;
        let validators = state
            .as_ref()
            .map(|s| s.validators.clone())
            .unwrap_or_default();
        let outcome = self.fetcher.fetch(&feed.url, &validators).await;
        let now = Utc::now();
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                let status = e.status();
                let message = e.to_string();
                let url = feed.url.clone();
                if let Err(store_error) = self
                    .with_store(move |s| s.record_failure(&url, status, &message, now.timestamp()))
                    .await
                {
                    warn!(url = %feed.url, cause = %store_error, "cannot record the failed fetch");
                }
                return Err(fail(e.into()));
            }
        };
        let (body, status, new_validators) = match outcome {
            FetchOutcome::NotModified => {
                let url = feed.url.clone();
                self.with_store(move |s| s.record_not_modified(&url, now.timestamp()))
                    .await
                    .map_err(|e| fail(e.into()))?;
                return Ok(PollReport {
                    not_modified: true,
                    ..PollReport::default()
                });
            }
            FetchOutcome::Fetched {
                body,
                status,
                validators,
                ..
            } => (body, status, validators),
        };
        let config = self.config.clone();
        let store = self.store.clone();
        let feed_owned = feed.clone();
        let first_fetch = state.is_none_or(|s| s.first_success.is_none());
        let result = tokio::task::spawn_blocking(move || {
            process(
                &config,
                &store,
                &feed_owned,
                &body,
                status,
                &new_validators,
                first_fetch,
                now,
            )
        })
        .await
        .map_err(|e| fail(PollCause::Task(e.to_string())))?;
        match result {
            Ok(report) => Ok(report),
            Err(cause) => {
                if let PollCause::Feed(e) = &cause {
                    let message = e.to_string();
                    let url = feed.url.clone();
                    if let Err(store_error) = self
                        .with_store(move |s| {
                            s.record_failure(&url, Some(status), &message, now.timestamp())
                        })
                        .await
                    {
                        warn!(url = %feed.url, cause = %store_error, "cannot record the failed parse");
                    }
                }
                Err(fail(cause))
            }
        }
    }

    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || f(&mut lock(&store))).await {
            Ok(result) => result,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

/// Parses a fetched body and ingests its new items with their alerts.
#[allow(clippy::too_many_arguments)]
fn process(
    config: &Config,
    store: &Mutex<Store>,
    feed: &Feed,
    body: &[u8],
    status: u16,
    validators: &Validators,
    first_fetch: bool,
    now: DateTime<Utc>,
) -> Result<PollReport, PollCause> {
    let parsed = parse_feed(body, &feed.url)?;
    let unseen = lock(store).unseen(&feed.url, parsed.items.iter().map(|i| i.key.as_str()))?;
    let catch_up_start = now
        - chrono::Duration::from_std(config.raw.defaults.catch_up.0)
            .unwrap_or(chrono::Duration::MAX);

    let mut report = PollReport {
        items: parsed.items.len(),
        ..PollReport::default()
    };
    let mut seen_now: HashSet<&str> = HashSet::new();
    let mut new_items = Vec::new();
    let mut alerts: Vec<PendingAlert> = Vec::new();
    for item in &parsed.items {
        // A feed can repeat a guid; the first occurrence wins.
        if !unseen.contains(&item.key) || !seen_now.insert(item.key.as_str()) {
            continue;
        }
        new_items.push(item);
        if first_fetch && item.published.is_none_or(|p| p < catch_up_start) {
            report.caught_up += 1;
            continue;
        }
        let document = Document::new(&item.title, &item.summary, &item.content, &config.gazetteer);
        let matches = config.rules.evaluate(&document);
        if matches.is_empty() {
            continue;
        }
        let story = story_id(item);
        let context = AlertContext {
            feed_url: &feed.url,
            feed_name: feed.name.as_deref(),
            item,
            document: &document,
            gazetteer: &config.gazetteer,
            now,
        };
        for m in matches {
            let rule = config.rule(m.rule);
            let rule_id = rule.id.get_ref();
            if let Some(cooldown) = rule.cooldown {
                let since = now.timestamp_millis() - cooldown.0.as_millis() as i64;
                let in_batch = alerts
                    .iter()
                    .any(|a| a.rule == *rule_id && a.story == story);
                if in_batch || lock(store).alerted_recently(rule_id, &story, since)? {
                    debug!(rule = %rule_id, story = %story, "within cooldown; not alerting again");
                    continue;
                }
            }
            let alert = context.alert(rule, &m.hits, &story);
            let json = serde_json::to_string(&alert)
                .expect("alerts serialize: every field is a plain string or number");
            alerts.push(PendingAlert {
                id: alert.id,
                rule: rule_id.clone(),
                story: story.clone(),
                item_key: item.key.clone(),
                created_ms: now.timestamp_millis(),
                json,
            });
        }
    }
    report.new_items = new_items.len();
    report.alerts = alerts.len();
    let seen: Vec<SeenItem<'_>> = new_items
        .iter()
        .map(|item| SeenItem {
            key: &item.key,
            title: &item.title,
            link: item.link.as_deref(),
            published: item.published.map(|p| p.timestamp()),
            summary: &item.summary,
            content: &item.content,
        })
        .collect();
    lock(store).ingest(
        &feed.url,
        status,
        validators,
        now.timestamp(),
        &seen,
        &alerts,
    )?;
    Ok(report)
}
