//! The state: one SQLite file (WAL) holding feeds, seen items, item history
//! and alerts.
//!
//! The store's central promise is atomic ingest: the items of a fetch are
//! marked seen in the *same* transaction that records the alerts they raised
//! as pending, so a crash can neither lose an alert nor raise it twice.
//! Delivery later marks alerts delivered. The schema is versioned with
//! `PRAGMA user_version` and migrated forward on open. This module knows SQL
//! and nothing about HTTP, rules or sinks.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::fetch::Validators;

/// Why the state could not be read or written.
///
/// The SQLite error is part of the message and not also its `source`: an
/// error printed with its chain said it three times ("file is not a
/// database: file is not a database: Error code 26: file is not a database").
#[derive(Debug, thiserror::Error)]
#[error("state database {path}: {cause}")]
pub struct StoreError {
    pub path: String,
    pub cause: rusqlite::Error,
}

type Result<T> = std::result::Result<T, StoreError>;

/// Schema migrations; index + 1 is the schema version they produce.
const MIGRATIONS: &[&str] = &[
    // 1: feeds, seen items, item history, alerts.
    "CREATE TABLE feeds (
        url TEXT PRIMARY KEY,
        etag TEXT,
        last_modified TEXT,
        last_attempt INTEGER,
        last_success INTEGER,
        first_success INTEGER,
        last_status INTEGER,
        last_error TEXT,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        items_seen INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE seen_items (
        feed_url TEXT NOT NULL,
        item_key TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        PRIMARY KEY (feed_url, item_key)
    ) WITHOUT ROWID;
    CREATE TABLE items (
        feed_url TEXT NOT NULL,
        item_key TEXT NOT NULL,
        title TEXT NOT NULL,
        link TEXT,
        published INTEGER,
        summary TEXT NOT NULL,
        content TEXT NOT NULL,
        stored_at INTEGER NOT NULL,
        PRIMARY KEY (feed_url, item_key)
    );
    CREATE INDEX items_stored_at ON items (stored_at);
    CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        rule TEXT NOT NULL,
        story TEXT NOT NULL,
        feed_url TEXT NOT NULL,
        item_key TEXT NOT NULL,
        created INTEGER NOT NULL,
        delivered INTEGER,
        json TEXT NOT NULL
    );
    CREATE INDEX alerts_pending ON alerts (created) WHERE delivered IS NULL;
    CREATE INDEX alerts_rule_story ON alerts (rule, story, created);",
    // 2: feed health and politeness.
    "ALTER TABLE feeds ADD COLUMN moved_to TEXT;
    ALTER TABLE feeds ADD COLUMN disabled TEXT;
    ALTER TABLE feeds ADD COLUMN failing_since INTEGER;
    ALTER TABLE feeds ADD COLUMN down_alerted INTEGER;
    ALTER TABLE feeds ADD COLUMN interval_secs INTEGER;",
    // 3: stories (items about the same event across feeds).
    "CREATE TABLE stories (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        terms TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        sources INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX stories_last_seen ON stories (last_seen);
    CREATE TABLE story_items (
        story TEXT NOT NULL,
        feed_url TEXT NOT NULL,
        item_key TEXT NOT NULL,
        title TEXT NOT NULL,
        link TEXT,
        seen INTEGER NOT NULL,
        PRIMARY KEY (feed_url, item_key)
    );
    CREATE INDEX story_items_story ON story_items (story);",
    // 4: items per entity per hour (of publication), for surge detection.
    "CREATE TABLE entity_hours (
        entity TEXT NOT NULL,
        hour INTEGER NOT NULL,
        items INTEGER NOT NULL,
        PRIMARY KEY (entity, hour)
    ) WITHOUT ROWID;",
    // 5: counting a story's sources reads the index alone.
    "CREATE INDEX story_items_story_feed ON story_items (story, feed_url);",
    // 6: (story, feed_url) serves every lookup by story; a second index on
    // story alone only cost a random-order write per item.
    "DROP INDEX IF EXISTS story_items_story;",
    // 7: follow-up alerts look up the alerts raised on a story.
    "CREATE INDEX alerts_story ON alerts (story);",
    // 8: an item republished under a new guid is found by its link.
    "CREATE INDEX items_feed_link ON items (feed_url, link);",
    // 9: links lose their tracking parameters; the rows are rewritten in
    // Rust, by `canonicalize_links`.
    "",
    // 10: alerts waiting for a webhook, kept across restarts.
    "CREATE TABLE webhook_queue (
        url TEXT NOT NULL,
        alert TEXT NOT NULL,
        queued INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt INTEGER NOT NULL,
        last_error TEXT,
        PRIMARY KEY (url, alert)
    ) WITHOUT ROWID;
    CREATE INDEX webhook_queue_due ON webhook_queue (url, next_attempt);",
];

/// The schema version whose migration is [`canonicalize_links`].
const CANONICAL_LINKS: usize = 9;

/// Migration 9: items are keyed and compared by their link without its
/// tracking parameters ([`crate::feed::canonical_link`]) from this version
/// on. So that no item keyed by its link alerts again, each seen key that
/// changes under it is also recorded in its new form (the old one stays: a
/// key that is a guid is not rewritten when the feed is read), and stored
/// links are rewritten for the republished-item check.
fn canonicalize_links(tx: &rusqlite::Transaction) -> rusqlite::Result<()> {
    let seen: Vec<(String, String, i64)> = tx
        .prepare("SELECT feed_url, item_key, first_seen FROM seen_items WHERE item_key LIKE '%?%'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (feed, key, first_seen) in seen {
        let canonical = crate::feed::canonical_link(&key);
        if canonical != key {
            tx.execute(
                "INSERT OR IGNORE INTO seen_items (feed_url, item_key, first_seen) VALUES (?1, ?2, ?3)",
                params![feed, canonical, first_seen],
            )?;
        }
    }
    let links: Vec<(String, String, String)> = tx
        .prepare("SELECT feed_url, item_key, link FROM items WHERE link LIKE '%?%'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (feed, key, link) in links {
        let canonical = crate::feed::canonical_link(&link);
        if canonical != link {
            tx.execute(
                "UPDATE items SET link = ?3 WHERE feed_url = ?1 AND item_key = ?2",
                params![feed, key, canonical],
            )?;
        }
    }
    Ok(())
}

/// Weight of the most recent day in the surge baseline.
pub const BASELINE_DAY_WEIGHT: f64 = 0.3;

/// The usual items per hour before `hour`, from `(hour, items)` counts: the
/// counts are summed per day (24-hour spans ending at `hour`), and the days
/// since the first with history are averaged with exponentially decaying
/// weights ([`BASELINE_DAY_WEIGHT`] for the latest), so that a steadily
/// growing topic raises its own baseline and a quiet week lowers it. A first
/// day only partly covered by history counts as if its rate held all day.
pub fn ewma_hourly_rate(hours: &[(i64, i64)], hour: i64, history_hours: i64) -> f64 {
    if history_hours <= 0 {
        return 0.0;
    }
    let days = ((history_hours + 23) / 24) as usize;
    let mut daily = vec![0f64; days];
    for &(h, items) in hours {
        let ago = hour - 1 - h;
        if (0..history_hours).contains(&ago) {
            daily[days - 1 - (ago / 24) as usize] += items.max(0) as f64;
        }
    }
    let first_day_hours = history_hours - 24 * (days as i64 - 1);
    let mut rate = daily[0] * 24.0 / first_day_hours as f64;
    for &day in &daily[1..] {
        rate = BASELINE_DAY_WEIGHT * day + (1.0 - BASELINE_DAY_WEIGHT) * rate;
    }
    rate / 24.0
}

const FEED_COLUMNS: &str = "url, etag, last_modified, last_attempt, last_success, first_success, last_status,
    last_error, consecutive_failures, items_seen, moved_to, disabled, failing_since, down_alerted, interval_secs";

/// What the state remembers about one feed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedState {
    pub url: String,
    pub validators: Validators,
    pub last_attempt: Option<i64>,
    pub last_success: Option<i64>,
    pub first_success: Option<i64>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    pub items_seen: u64,
    /// Where the feed moved for good (301/308); fetched there from now on.
    pub moved_to: Option<String>,
    /// Why the feed is no longer polled (410 Gone).
    pub disabled: Option<String>,
    /// When the current run of failures began.
    pub failing_since: Option<i64>,
    /// When a feed-down alert was raised for the current outage.
    pub down_alerted: Option<i64>,
    /// The polling interval last used, in seconds.
    pub interval_secs: Option<i64>,
}

impl FeedState {
    /// The feed's health in one word: disabled, failing, ok, or new (never fetched).
    pub fn status(&self) -> &'static str {
        if self.disabled.is_some() {
            "disabled"
        } else if self.consecutive_failures > 0 {
            "failing"
        } else if self.last_success.is_some() {
            "ok"
        } else {
            "new"
        }
    }

    /// Average new items per day since the first successful fetch.
    pub fn items_per_day(&self, now: i64) -> Option<f64> {
        let first = self.first_success?;
        let days = ((now - first) as f64 / 86_400.0).max(1.0);
        Some(self.items_seen as f64 / days)
    }
}

/// An alert waiting in a webhook's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedPost {
    pub alert: String,
    /// The alert's JSON line.
    pub json: String,
    /// When it was queued (unix seconds).
    pub queued: i64,
    /// Attempts that failed so far.
    pub attempts: i64,
}

/// An item to remember as seen (and keep for replay).
#[derive(Debug, Clone)]
pub struct SeenItem<'a> {
    pub key: &'a str,
    pub title: &'a str,
    pub link: Option<&'a str>,
    pub published: Option<i64>,
    pub summary: &'a str,
    pub content: &'a str,
    /// The story the item joined, with the story's signature terms.
    pub story: Option<(String, Vec<String>)>,
    /// Gazetteer entity ids the item mentions, counted per hour of `hour`.
    pub entities: Vec<String>,
    /// The hour (unix seconds / 3600) the item counts in.
    pub hour: i64,
}

/// An entity's mentions in one hour against its usual rate.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityRate {
    pub entity: String,
    pub last_hour: u32,
    /// Usual items per hour before the last hour: see [`ewma_hourly_rate`].
    pub baseline: f64,
    /// Hours of history the baseline rests on.
    pub history_hours: i64,
}

/// A story as `newswatch stories` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoryRow {
    pub id: String,
    pub title: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub sources: u32,
    pub items: Vec<StoryItemRow>,
}

/// One item of a story.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoryItemRow {
    pub feed_url: String,
    pub title: String,
    pub link: Option<String>,
}

/// An alert recorded as pending delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingAlert {
    pub id: String,
    pub rule: String,
    pub story: String,
    pub item_key: String,
    pub created_ms: i64,
    /// The exact JSON line (without newline) that will be written to the log.
    pub json: String,
}

/// An item kept for replay.
#[derive(Debug, Clone)]
pub struct StoredItem {
    pub feed_url: String,
    pub key: String,
    pub title: String,
    pub link: Option<String>,
    pub published: Option<i64>,
    pub summary: String,
    pub content: String,
}

/// The open state database.
pub struct Store {
    conn: Connection,
    path: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens the state at `path` for the commands that only read it
    /// (`feeds`, `stories`, `match --since`): read-only, so that another
    /// user's state (a system daemon's) can be read where it cannot be
    /// written, and without creating anything when there is no state yet
    /// (an empty one in memory stands for it). A state from an older
    /// version is opened as [`Store::open`] does, to be migrated.
    pub fn open_for_reading(path: &Path) -> Result<Store> {
        let name = path.display().to_string();
        let wrap = |cause| StoreError {
            path: name.clone(),
            cause,
        };
        if !path.exists() {
            let conn = Connection::open_in_memory().map_err(wrap)?;
            let mut store = Store {
                conn,
                path: name.clone(),
            };
            store.init().map_err(wrap)?;
            return Ok(store);
        }
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(wrap)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(wrap)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(wrap)?;
        if version != MIGRATIONS.len() as i64 {
            drop(conn);
            return Store::open(path);
        }
        Ok(Store { conn, path: name })
    }

    /// Opens (creating if needed) and migrates the state at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let name = path.display().to_string();
        let wrap = |source| StoreError {
            path: path.display().to_string(),
            cause: source,
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                wrap(rusqlite::Error::ToSqlConversionFailure(Box::new(
                    std::io::Error::new(
                        e.kind(),
                        format!("cannot create directory {}: {e}", dir.display()),
                    ),
                )))
            })?;
        }
        let conn = Connection::open(path).map_err(wrap)?;
        let mut store = Store { conn, path: name };
        store.init().map_err(wrap)?;
        Ok(store)
    }

    fn init(&mut self) -> rusqlite::Result<()> {
        self.conn.busy_timeout(Duration::from_secs(10))?;
        self.conn.pragma_update(None, "journal_mode", "WAL")?;
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version < 0 || version as usize > MIGRATIONS.len() {
            return Err(rusqlite::Error::ToSqlConversionFailure(
                format!(
                    "schema version {version} is newer than this newswatch understands ({}); upgrade newswatch",
                    MIGRATIONS.len()
                )
                .into(),
            ));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            if i + 1 == CANONICAL_LINKS {
                canonicalize_links(&tx)?;
            }
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(())
    }

    fn wrap(&self, source: rusqlite::Error) -> StoreError {
        StoreError {
            path: self.path.clone(),
            cause: source,
        }
    }

    /// The state of one feed, if it was ever fetched.
    pub fn feed_state(&self, url: &str) -> Result<Option<FeedState>> {
        self.conn
            .query_row(
                &format!("SELECT {FEED_COLUMNS} FROM feeds WHERE url = ?1"),
                [url],
                feed_row,
            )
            .optional()
            .map_err(|e| self.wrap(e))
    }

    /// Every feed in the state.
    pub fn feed_states(&self) -> Result<Vec<FeedState>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {FEED_COLUMNS} FROM feeds ORDER BY url"))
            .map_err(|e| self.wrap(e))?;
        let rows = stmt.query_map([], feed_row).map_err(|e| self.wrap(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.wrap(e))
    }

    /// Records a failed attempt.
    pub fn record_failure(
        &self,
        url: &str,
        status: Option<u16>,
        error: &str,
        now: i64,
    ) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO feeds (url, last_attempt, last_status, last_error, consecutive_failures, failing_since)
                 VALUES (?1, ?2, ?3, ?4, 1, ?2)
                 ON CONFLICT (url) DO UPDATE SET last_attempt = ?2, last_status = ?3, last_error = ?4,
                    consecutive_failures = consecutive_failures + 1, failing_since = COALESCE(failing_since, ?2)",
                params![url, now, status, error],
            )
            .map(drop)
            .map_err(|e| self.wrap(e))
    }

    /// Records a 304 Not Modified.
    pub fn record_not_modified(&self, url: &str, now: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE feeds SET last_attempt = ?2, last_success = ?2, last_status = 304, last_error = NULL,
                    consecutive_failures = 0, failing_since = NULL WHERE url = ?1",
                params![url, now],
            )
            .map(drop)
            .map_err(|e| self.wrap(e))
    }

    /// Remembers that the feed moved for good to `to`.
    pub fn set_moved(&self, url: &str, to: &str) -> Result<()> {
        self.update(url, "moved_to", Some(to))
    }

    /// Stops polling the feed, with the reason shown by `newswatch feeds`.
    pub fn disable(&self, url: &str, reason: &str) -> Result<()> {
        self.update(url, "disabled", Some(reason))
    }

    /// Polls the feed again (clears a 410 verdict and a recorded move).
    pub fn enable(&self, url: &str) -> Result<bool> {
        self.conn
            .execute(
                "UPDATE feeds SET disabled = NULL, moved_to = NULL, consecutive_failures = 0,
                    failing_since = NULL, down_alerted = NULL WHERE url = ?1",
                [url],
            )
            .map(|n| n > 0)
            .map_err(|e| self.wrap(e))
    }

    /// Records the interval the scheduler uses for the feed.
    pub fn set_interval(&self, url: &str, secs: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE feeds SET interval_secs = ?2 WHERE url = ?1",
                params![url, secs],
            )
            .map(drop)
            .map_err(|e| self.wrap(e))
    }

    fn update(&self, url: &str, column: &str, value: Option<&str>) -> Result<()> {
        // `column` is one of our own names, never user input.
        self.conn
            .execute(
                &format!(
                    "INSERT INTO feeds (url, {column}) VALUES (?1, ?2)
                     ON CONFLICT (url) DO UPDATE SET {column} = ?2"
                ),
                params![url, value],
            )
            .map(drop)
            .map_err(|e| self.wrap(e))
    }

    /// Records an alert that belongs to no item (a surge) as pending.
    pub fn record_alert(&self, alert: &PendingAlert) -> Result<()> {
        insert_pending(&self.conn, "", alert).map_err(|e| self.wrap(e))
    }

    /// Records a feed-health alert as pending and notes (or clears) the outage
    /// it belongs to, in one transaction.
    pub fn record_health_alert(
        &mut self,
        url: &str,
        alert: &PendingAlert,
        down_since: Option<i64>,
    ) -> Result<()> {
        let path = self.path.clone();
        let wrap = |source| StoreError {
            path: path.clone(),
            cause: source,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
        insert_pending(&tx, url, alert).map_err(wrap)?;
        tx.execute(
            "UPDATE feeds SET down_alerted = ?2 WHERE url = ?1",
            params![url, down_since],
        )
        .map_err(wrap)?;
        tx.commit().map_err(wrap)
    }

    /// Which of `keys` this feed has not seen yet.
    pub fn unseen<'k>(
        &self,
        url: &str,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> Result<HashSet<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM seen_items WHERE feed_url = ?1 AND item_key = ?2")
            .map_err(|e| self.wrap(e))?;
        let mut out = HashSet::new();
        for key in keys {
            let seen = stmt.exists(params![url, key]).map_err(|e| self.wrap(e))?;
            if !seen {
                out.insert(key.to_string());
            }
        }
        Ok(out)
    }

    /// Which of `items` (key, link, title) this feed already carried under
    /// another key, with the same link and title, within the retention of
    /// item history: an article republished with a new guid.
    pub fn republished(&self, url: &str, items: &[(&str, &str, &str)]) -> Result<HashSet<String>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT 1 FROM items WHERE feed_url = ?1 AND link = ?2 AND title = ?3 AND item_key <> ?4",
            )
            .map_err(|e| self.wrap(e))?;
        let mut out = HashSet::new();
        for &(key, link, title) in items {
            if stmt
                .exists(params![url, link, title, key])
                .map_err(|e| self.wrap(e))?
            {
                out.insert(key.to_string());
            }
        }
        Ok(out)
    }

    /// Whether `rule` alerted on `story` at or after `since_ms`.
    pub fn alerted_recently(&self, rule: &str, story: &str, since_ms: i64) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT 1 FROM alerts WHERE rule = ?1 AND story = ?2 AND created >= ?3")
            .and_then(|mut s| s.exists(params![rule, story, since_ms]))
            .map_err(|e| self.wrap(e))
    }

    /// The atomic step of the pipeline: in one transaction, update the feed's
    /// fetch state, mark `items` seen (keeping their text for replay), and
    /// record `alerts` as pending.
    pub fn ingest(
        &mut self,
        url: &str,
        status: u16,
        validators: &Validators,
        now: i64,
        items: &[SeenItem<'_>],
        alerts: &[PendingAlert],
    ) -> Result<()> {
        let path = self.path.clone();
        let wrap = |source| StoreError {
            path: path.clone(),
            cause: source,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
        tx.execute(
            "INSERT INTO feeds (url, etag, last_modified, last_attempt, last_success, first_success, last_status,
                                last_error, consecutive_failures, items_seen)
             VALUES (?1, ?2, ?3, ?4, ?4, ?4, ?5, NULL, 0, ?6)
             ON CONFLICT (url) DO UPDATE SET etag = ?2, last_modified = ?3, last_attempt = ?4, last_success = ?4,
                first_success = COALESCE(first_success, ?4), last_status = ?5, last_error = NULL,
                consecutive_failures = 0, failing_since = NULL, items_seen = items_seen + ?6",
            params![url, validators.etag, validators.last_modified, now, status, items.len() as i64],
        )
        .map_err(wrap)?;
        {
            let mut seen = tx
                .prepare_cached("INSERT OR IGNORE INTO seen_items (feed_url, item_key, first_seen) VALUES (?1, ?2, ?3)")
                .map_err(wrap)?;
            let mut history = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO items (feed_url, item_key, title, link, published, summary, content, stored_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(wrap)?;
            let mut story = tx
                .prepare_cached(
                    "INSERT INTO stories (id, title, terms, first_seen, last_seen, sources) VALUES (?1, ?2, ?3, ?4, ?4, 1)
                     ON CONFLICT (id) DO UPDATE SET last_seen = MAX(last_seen, ?4)",
                )
                .map_err(wrap)?;
            let mut story_item = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO story_items (story, feed_url, item_key, title, link, seen)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(wrap)?;
            let mut sources = tx
                .prepare_cached(
                    "UPDATE stories SET sources = (SELECT COUNT(DISTINCT feed_url) FROM story_items WHERE story = ?1)
                     WHERE id = ?1",
                )
                .map_err(wrap)?;
            let mut entity_hours = tx
                .prepare_cached(
                    "INSERT INTO entity_hours (entity, hour, items) VALUES (?1, ?2, 1)
                     ON CONFLICT (entity, hour) DO UPDATE SET items = items + 1",
                )
                .map_err(wrap)?;
            for item in items {
                seen.execute(params![url, item.key, now]).map_err(wrap)?;
                for entity in &item.entities {
                    entity_hours
                        .execute(params![entity, item.hour])
                        .map_err(wrap)?;
                }
                if let Some((id, terms)) = &item.story {
                    story
                        .execute(params![id, item.title, terms.join(" "), now])
                        .map_err(wrap)?;
                    story_item
                        .execute(params![id, url, item.key, item.title, item.link, now])
                        .map_err(wrap)?;
                    sources.execute(params![id]).map_err(wrap)?;
                }
                history
                    .execute(params![
                        url,
                        item.key,
                        item.title,
                        item.link,
                        item.published,
                        item.summary,
                        item.content,
                        now
                    ])
                    .map_err(wrap)?;
            }
            for alert in alerts {
                insert_pending(&tx, url, alert).map_err(wrap)?;
            }
        }
        tx.commit().map_err(wrap)
    }

    /// Distinct feeds carrying `story`, counting `feed_url` as one of them.
    pub fn story_sources(&self, story: &str, feed_url: &str) -> Result<u32> {
        self.conn
            .prepare_cached(
                "SELECT COUNT(DISTINCT feed_url) + (NOT EXISTS (SELECT 1 FROM story_items WHERE story = ?1 AND feed_url = ?2))
                 FROM story_items WHERE story = ?1",
            )
            .and_then(|mut s| s.query_row(params![story, feed_url], |r| r.get::<_, i64>(0)))
            .map(|n| n.max(1) as u32)
            .map_err(|e| self.wrap(e))
    }

    /// Calls `f` with each story seen since `since` (unix seconds): its id,
    /// its signature terms separated by spaces, and when it was last seen;
    /// to rebuild the story index. Rows stream: a full window never sits in
    /// memory as strings.
    pub fn for_each_story_since(
        &self,
        since: i64,
        f: &mut dyn FnMut(&str, &str, i64),
    ) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, terms, last_seen FROM stories WHERE last_seen >= ?1")
            .map_err(|e| self.wrap(e))?;
        let mut rows = stmt.query([since]).map_err(|e| self.wrap(e))?;
        while let Some(row) = rows.next().map_err(|e| self.wrap(e))? {
            let read = |row: &rusqlite::Row<'_>| -> rusqlite::Result<(String, String, i64)> {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            };
            let (id, terms, last_seen) = read(row).map_err(|e| self.wrap(e))?;
            f(&id, &terms, last_seen);
        }
        Ok(())
    }

    /// Stories seen since `since`, most sources first, with their items.
    pub fn stories_since(&self, since: i64, limit: usize) -> Result<Vec<StoryRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, title, first_seen, last_seen, sources FROM stories WHERE last_seen >= ?1
                 ORDER BY sources DESC, last_seen DESC LIMIT ?2",
            )
            .map_err(|e| self.wrap(e))?;
        let mut stories = stmt
            .query_map(params![since, limit as i64], |r| {
                Ok(StoryRow {
                    id: r.get(0)?,
                    title: r.get(1)?,
                    first_seen: r.get(2)?,
                    last_seen: r.get(3)?,
                    sources: r.get(4)?,
                    items: Vec::new(),
                })
            })
            .map_err(|e| self.wrap(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.wrap(e))?;
        let mut items = self
            .conn
            .prepare("SELECT feed_url, title, link FROM story_items WHERE story = ?1 ORDER BY seen")
            .map_err(|e| self.wrap(e))?;
        for story in &mut stories {
            story.items = items
                .query_map([&story.id], |r| {
                    Ok(StoryItemRow {
                        feed_url: r.get(0)?,
                        title: r.get(1)?,
                        link: r.get(2)?,
                    })
                })
                .map_err(|e| self.wrap(e))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(|e| self.wrap(e))?;
        }
        Ok(stories)
    }

    /// Items per hour for `entity`: in `hour`, and on average over the
    /// `baseline_hours` before it.
    pub fn entity_rate(&self, entity: &str, hour: i64, baseline_hours: i64) -> Result<EntityRate> {
        let wrap = |e| self.wrap(e);
        let last_hour: i64 = self
            .conn
            .prepare_cached(
                "SELECT COALESCE(SUM(items), 0) FROM entity_hours WHERE entity = ?1 AND hour = ?2",
            )
            .and_then(|mut s| s.query_row(params![entity, hour], |r| r.get(0)))
            .map_err(wrap)?;
        let hours: Vec<(i64, i64)> = self
            .conn
            .prepare_cached(
                "SELECT hour, items FROM entity_hours
                 WHERE entity = ?1 AND hour >= ?2 AND hour < ?3",
            )
            .and_then(|mut s| {
                s.query_map(params![entity, hour - baseline_hours, hour], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect()
            })
            .map_err(wrap)?;
        let history_hours = hours.iter().map(|&(h, _)| hour - h).max().unwrap_or(0);
        Ok(EntityRate {
            entity: entity.to_string(),
            last_hour: last_hour.max(0) as u32,
            baseline: ewma_hourly_rate(&hours, hour, history_hours),
            history_hours,
        })
    }

    /// Titles of the stories of the last `hours` that mention `entity`'s id in
    /// their signature, most sources first.
    pub fn top_stories_with(&self, entity: &str, since: i64, limit: usize) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT title FROM stories WHERE last_seen >= ?1 AND (' ' || terms || ' ') LIKE ?2
                 ORDER BY sources DESC, last_seen DESC LIMIT ?3",
            )
            .map_err(|e| self.wrap(e))?;
        let pattern = format!("% @{entity} %");
        let rows = stmt
            .query_map(params![since, pattern, limit as i64], |r| r.get(0))
            .map_err(|e| self.wrap(e))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(|e| self.wrap(e))
    }

    /// Titles of the stories `rule` alerted on since `since_ms`, most sources first.
    pub fn top_stories_of_rule(
        &self,
        rule: &str,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT title FROM stories WHERE id IN
                   (SELECT story FROM alerts WHERE rule = ?1 AND created >= ?2)
                 ORDER BY sources DESC, last_seen DESC LIMIT ?3",
            )
            .map_err(|e| self.wrap(e))?;
        let rows = stmt
            .query_map(params![rule, since_ms, limit as i64], |r| r.get(0))
            .map_err(|e| self.wrap(e))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(|e| self.wrap(e))
    }

    /// The number of distinct feeds that carried `story`.
    pub fn story_source_count(&self, story: &str) -> Result<u32> {
        self.conn
            .prepare_cached("SELECT COUNT(DISTINCT feed_url) FROM story_items WHERE story = ?1")
            .and_then(|mut s| s.query_row([story], |r| r.get::<_, i64>(0)))
            .map(|n| n.max(0) as u32)
            .map_err(|e| self.wrap(e))
    }

    /// The alerts raised on `story`, oldest first: rule, item key, JSON line.
    pub fn story_alerts(&self, story: &str) -> Result<Vec<(String, String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT rule, item_key, json FROM alerts WHERE story = ?1 ORDER BY created, id",
            )
            .map_err(|e| self.wrap(e))?;
        let rows = stmt
            .query_map([story], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.wrap(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.wrap(e))
    }

    /// Alerts not yet delivered, oldest first.
    pub fn pending_alerts(&self, limit: usize) -> Result<Vec<PendingAlert>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, rule, story, item_key, created, json FROM alerts WHERE delivered IS NULL
                 ORDER BY created, id LIMIT ?1",
            )
            .map_err(|e| self.wrap(e))?;
        let rows = stmt
            .query_map([limit as i64], |r| {
                Ok(PendingAlert {
                    id: r.get(0)?,
                    rule: r.get(1)?,
                    story: r.get(2)?,
                    item_key: r.get(3)?,
                    created_ms: r.get(4)?,
                    json: r.get(5)?,
                })
            })
            .map_err(|e| self.wrap(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.wrap(e))
    }

    /// Alerts waiting for each webhook, by URL.
    pub fn webhook_backlog(&self) -> Result<Vec<(String, u64)>> {
        let run = || -> rusqlite::Result<Vec<(String, u64)>> {
            self.conn
                .prepare_cached(
                    "SELECT url, COUNT(*) FROM webhook_queue GROUP BY url ORDER BY url",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?
                .collect()
        };
        run().map_err(|e| self.wrap(e))
    }

    /// Number of alerts waiting for delivery.
    pub fn pending_count(&self) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM alerts WHERE delivered IS NULL",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.wrap(e))
    }

    /// Marks alert `id` delivered to the log and, in the same transaction,
    /// queues it for each webhook in `webhooks` (by URL): an alert in the
    /// log is never missing from a webhook's queue, even after a crash.
    pub fn mark_delivered_queueing(&self, id: &str, now: i64, webhooks: &[&str]) -> Result<()> {
        let run = || -> rusqlite::Result<()> {
            let tx = self.conn.unchecked_transaction()?;
            tx.execute(
                "UPDATE alerts SET delivered = ?2 WHERE id = ?1",
                params![id, now],
            )?;
            for url in webhooks {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO webhook_queue (url, alert, queued, next_attempt)
                     VALUES (?1, ?2, ?3, ?3)",
                )?
                .execute(params![url, id, now])?;
            }
            tx.commit()
        };
        run().map_err(|e| self.wrap(e))
    }

    /// Up to `limit` alerts queued for webhook `url` whose next attempt is
    /// due at `now`, the longest waiting first.
    pub fn due_posts(&self, url: &str, now: i64, limit: usize) -> Result<Vec<QueuedPost>> {
        let run = || -> rusqlite::Result<Vec<QueuedPost>> {
            self.conn
                .prepare_cached(
                    "SELECT q.alert, a.json, q.queued, q.attempts FROM webhook_queue q
                     JOIN alerts a ON a.id = q.alert
                     WHERE q.url = ?1 AND q.next_attempt <= ?2
                     ORDER BY q.next_attempt, q.queued LIMIT ?3",
                )?
                .query_map(params![url, now, limit as i64], |r| {
                    Ok(QueuedPost {
                        alert: r.get(0)?,
                        json: r.get(1)?,
                        queued: r.get(2)?,
                        attempts: r.get(3)?,
                    })
                })?
                .collect()
        };
        run().map_err(|e| self.wrap(e))
    }

    /// When the next alert queued for webhook `url` is due, if any is queued.
    pub fn next_post_due(&self, url: &str) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT MIN(next_attempt) FROM webhook_queue WHERE url = ?1",
                [url],
                |r| r.get(0),
            )
            .map_err(|e| self.wrap(e))
    }

    /// Takes alert `alert` off webhook `url`'s queue (posted, or given up on).
    pub fn post_done(&self, url: &str, alert: &str) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM webhook_queue WHERE url = ?1 AND alert = ?2")
            .and_then(|mut stmt| stmt.execute(params![url, alert]))
            .map(drop)
            .map_err(|e| self.wrap(e))
    }

    /// Records a failed attempt to post `alert` to `url`; the next one is at `next`.
    pub fn post_failed(&self, url: &str, alert: &str, next: i64, error: &str) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE webhook_queue SET attempts = attempts + 1, next_attempt = ?3, last_error = ?4
                 WHERE url = ?1 AND alert = ?2",
            )
            .and_then(|mut stmt| stmt.execute(params![url, alert, next, error]))
            .map(drop)
            .map_err(|e| self.wrap(e))
    }

    /// Drops the queues of webhooks no longer configured, and returns how
    /// many alerts each held.
    pub fn drop_other_queues(&self, configured: &[&str]) -> Result<Vec<(String, usize)>> {
        let run = || -> rusqlite::Result<Vec<(String, usize)>> {
            let queues: Vec<(String, i64)> = self
                .conn
                .prepare("SELECT url, COUNT(*) FROM webhook_queue GROUP BY url")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut dropped = Vec::new();
            for (url, n) in queues {
                if !configured.contains(&url.as_str()) {
                    self.conn
                        .execute("DELETE FROM webhook_queue WHERE url = ?1", [&url])?;
                    dropped.push((url, n as usize));
                }
            }
            Ok(dropped)
        };
        run().map_err(|e| self.wrap(e))
    }

    /// Items stored at or after `since` (unix seconds), newest first.
    pub fn items_since(&self, since: i64) -> Result<Vec<StoredItem>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT feed_url, item_key, title, link, published, summary, content FROM items
                 WHERE stored_at >= ?1 ORDER BY stored_at DESC, published DESC",
            )
            .map_err(|e| self.wrap(e))?;
        let rows = stmt
            .query_map([since], |r| {
                Ok(StoredItem {
                    feed_url: r.get(0)?,
                    key: r.get(1)?,
                    title: r.get(2)?,
                    link: r.get(3)?,
                    published: r.get(4)?,
                    summary: r.get(5)?,
                    content: r.get(6)?,
                })
            })
            .map_err(|e| self.wrap(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.wrap(e))
    }

    /// Drops item text older than the retention window and delivered alerts
    /// older than 90 days. Seen keys are kept: forgetting them would re-alert.
    /// Lets SQLite drop the pages it caches for this connection (they are
    /// read again when next needed): for a daemon gone quiet after polls.
    pub fn release_cache(&self) -> Result<()> {
        self.conn
            .execute_batch("PRAGMA shrink_memory;")
            .map_err(|e| self.wrap(e))
    }

    pub fn prune(&self, now: i64, retention: Duration) -> Result<usize> {
        let cutoff = now - retention.as_secs() as i64;
        let items = self
            .conn
            .execute("DELETE FROM items WHERE stored_at < ?1", [cutoff])
            .map_err(|e| self.wrap(e))?;
        let alerts = self
            .conn
            .execute(
                "DELETE FROM alerts WHERE delivered IS NOT NULL AND created < ?1",
                [(now - 90 * 24 * 3600) * 1000],
            )
            .map_err(|e| self.wrap(e))?;
        Ok(items + alerts)
    }
}

/// Records `alert` as pending (once: a repeated id is ignored).
fn insert_pending(conn: &Connection, feed_url: &str, alert: &PendingAlert) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO alerts (id, rule, story, feed_url, item_key, created, json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        alert.id,
        alert.rule,
        alert.story,
        feed_url,
        alert.item_key,
        alert.created_ms,
        alert.json
    ])
    .map(drop)
}

fn feed_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FeedState> {
    Ok(FeedState {
        url: r.get(0)?,
        validators: Validators {
            etag: r.get(1)?,
            last_modified: r.get(2)?,
        },
        last_attempt: r.get(3)?,
        last_success: r.get(4)?,
        first_success: r.get(5)?,
        last_status: r.get(6)?,
        last_error: r.get(7)?,
        consecutive_failures: r.get(8)?,
        items_seen: r.get::<_, i64>(9)?.max(0) as u64,
        moved_to: r.get(10)?,
        disabled: r.get(11)?,
        failing_since: r.get(12)?,
        down_alerted: r.get(13)?,
        interval_secs: r.get(14)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_surge_baseline_weighs_recent_days_more() {
        let hour = 10_000;
        let steady: Vec<(i64, i64)> = (1..=168).map(|ago| (hour - ago, 2)).collect();
        assert!((ewma_hourly_rate(&steady, hour, 168) - 2.0).abs() < 1e-9);
        // A quiet week with one busy day: the busier the more recent the day.
        let busy_on = |day: i64| -> f64 {
            let hours: Vec<(i64, i64)> = (1..=168)
                .map(|ago| (hour - ago, if (ago - 1) / 24 == day { 10 } else { 1 }))
                .collect();
            ewma_hourly_rate(&hours, hour, 168)
        };
        assert!(
            busy_on(0) > busy_on(1) && busy_on(1) > busy_on(6),
            "{}",
            busy_on(0)
        );
        assert!(busy_on(6) > 1.0);
        // Half a day of history at 3 an hour reads as 3 an hour.
        let half: Vec<(i64, i64)> = (1..=12).map(|ago| (hour - ago, 3)).collect();
        assert!((ewma_hourly_rate(&half, hour, 12) - 3.0).abs() < 1e-9);
        assert_eq!(ewma_hourly_rate(&[], hour, 0), 0.0);
    }

    fn alert(id: &str) -> PendingAlert {
        PendingAlert {
            id: id.into(),
            rule: "r".into(),
            story: "s".into(),
            item_key: "k".into(),
            created_ms: 1_000,
            json: format!("{{\"id\":\"{id}\"}}"),
        }
    }

    #[test]
    fn ingest_is_atomic_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        {
            let mut store = Store::open(&path).unwrap();
            let item = SeenItem {
                key: "k",
                title: "t",
                link: None,
                published: None,
                summary: "",
                content: "",
                story: None,
                entities: Vec::new(),
                hour: 0,
            };
            let validators = Validators {
                etag: Some("\"v1\"".into()),
                last_modified: None,
            };
            store
                .ingest("http://f", 200, &validators, 10, &[item], &[alert("a1")])
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert!(
            store
                .unseen("http://f", ["k", "new"])
                .unwrap()
                .contains("new")
        );
        assert_eq!(store.unseen("http://f", ["k"]).unwrap().len(), 0);
        let state = store.feed_state("http://f").unwrap().unwrap();
        assert_eq!(state.validators.etag.as_deref(), Some("\"v1\""));
        assert_eq!(state.first_success, Some(10));
        assert_eq!(store.pending_alerts(10).unwrap(), [alert("a1")]);
        assert!(store.alerted_recently("r", "s", 0).unwrap());
        assert!(!store.alerted_recently("r", "s", 2_000).unwrap());
        store.mark_delivered_queueing("a1", 11, &[]).unwrap();
        assert!(store.pending_alerts(10).unwrap().is_empty());
    }

    #[test]
    fn webhook_queues_hold_logged_alerts_until_done() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("state.sqlite")).unwrap();
        store
            .ingest(
                "http://f",
                200,
                &Validators::default(),
                10,
                &[],
                &[alert("a1")],
            )
            .unwrap();
        store
            .mark_delivered_queueing("a1", 11, &["http://h1", "http://h2"])
            .unwrap();
        assert!(store.pending_alerts(10).unwrap().is_empty());
        let backlog = |store: &Store| store.webhook_backlog().unwrap();
        assert_eq!(
            backlog(&store),
            [("http://h1".into(), 1), ("http://h2".into(), 1)]
        );
        let due = store.due_posts("http://h1", 11, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].alert.as_str(), due[0].attempts), ("a1", 0));
        // A failure puts it off; it is not due again before then.
        store
            .post_failed("http://h1", "a1", 20, "HTTP 503")
            .unwrap();
        assert!(store.due_posts("http://h1", 19, 10).unwrap().is_empty());
        assert_eq!(store.next_post_due("http://h1").unwrap(), Some(20));
        assert_eq!(store.due_posts("http://h1", 20, 10).unwrap()[0].attempts, 1);
        store.post_done("http://h1", "a1").unwrap();
        assert_eq!(backlog(&store), [("http://h2".into(), 1)]);
        // A webhook no longer configured loses its queue.
        let dropped = store.drop_other_queues(&["http://h1"]).unwrap();
        assert_eq!(dropped, [("http://h2".to_string(), 1)]);
        assert!(backlog(&store).is_empty());
    }

    #[test]
    fn migration_9_keeps_items_keyed_by_tagged_links_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        {
            // A state written by a version that kept tracking parameters.
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..CANONICAL_LINKS - 1] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", (CANONICAL_LINKS - 1) as i64)
                .unwrap();
            conn.execute_batch(
                "INSERT INTO seen_items VALUES
                    ('u', 'http://x/a?utm_source=rss', 5),
                    ('u', 'http://x/b?id=1&fbclid=z', 6),
                    ('u', 'http://x/b?id=1', 7),
                    ('u', 'guid-1', 8);
                INSERT INTO items VALUES
                    ('u', 'guid-1', 'Title', 'http://x/c?id=1&utm_medium=feed', NULL, '', '', 8);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let unseen = store
            .unseen(
                "u",
                [
                    "http://x/a",
                    "http://x/a?utm_source=rss",
                    "http://x/b?id=1",
                    "http://x/b?id=1&fbclid=z",
                    "guid-1",
                    "http://x/c?id=1",
                ],
            )
            .unwrap();
        assert_eq!(unseen, HashSet::from(["http://x/c?id=1".to_string()]));
        let first_seen: i64 = store
            .conn
            .query_row(
                "SELECT first_seen FROM seen_items WHERE item_key = 'http://x/b?id=1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(first_seen, 7, "an existing row is left as it was");
        // The stored link is compared in its new form.
        let republished = store
            .republished("u", &[("guid-2", "http://x/c?id=1", "Title")])
            .unwrap();
        assert_eq!(republished, HashSet::from(["guid-2".to_string()]));
    }

    #[test]
    fn failures_count_up_and_reset() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.sqlite")).unwrap();
        store.record_failure("u", Some(500), "HTTP 500", 1).unwrap();
        store.record_failure("u", None, "timed out", 2).unwrap();
        let s = store.feed_state("u").unwrap().unwrap();
        assert_eq!(
            (s.consecutive_failures, s.last_error.as_deref()),
            (2, Some("timed out"))
        );
        assert_eq!(s.first_success, None);
        store
            .ingest("u", 200, &Validators::default(), 3, &[], &[])
            .unwrap();
        assert_eq!(
            store.feed_state("u").unwrap().unwrap().consecutive_failures,
            0
        );
    }
}
