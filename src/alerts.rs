//! Alerts: the record of one rule firing on one item, and its identity.
//!
//! An [`Alert`] serializes to exactly one line of the alert log (format `v`
//! 1, see the README). Its `id` is a ULID whose time part is when the alert was
//! raised and whose random part is a hash of (rule, feed, item key), so the
//! same alert keeps the same id through crashes and re-delivery (the id is
//! stored with the pending alert). Stories group items about the same event;
//! for now an item's story is derived from its folded title. This module
//! builds values; it never writes them anywhere.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{RuleConfig, Severity};
use crate::document::{Document, Field};
use crate::entities::{Gazetteer, summarize};
use crate::feed::Item;
use crate::rules::Hit;
use crate::text::fold_words;

/// Version of the alert-log line format.
pub const FORMAT_VERSION: u32 = 1;
/// Entities listed per alert.
const MAX_ENTITIES: usize = 12;

/// One line of the alert log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub v: u32,
    pub id: String,
    pub ts: String,
    pub rule: String,
    pub title: String,
    pub severity: Severity,
    /// Shadow rules are logged but never notified.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
    pub item: AlertItem,
    pub story: String,
    pub sources: u32,
    pub matches: Vec<AlertMatch>,
    pub entities: Vec<AlertEntity>,
    /// For `surge` alerts: the entity's counts and the stories behind them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surge: Option<SurgeInfo>,
    /// For follow-up alerts: the number of sources the story has reached
    /// (one of `stories.followup_sources`); `sources` holds the exact count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followup: Option<u32>,
}

/// What a surge alert measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurgeInfo {
    /// The entity that surged (empty for a rule's surge).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub entity: String,
    /// The rule that surged, for a rule's surge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub last_hour: u32,
    /// The usual items per hour: an exponentially weighted mean of the daily
    /// counts of the week before, per hour.
    pub baseline: f64,
    pub top_stories: Vec<String>,
}

/// The alert for an entity suddenly mentioned far more than usual.
pub fn surge_alert(
    entity: &crate::entities::Entity,
    kind: &str,
    rate: &crate::store::EntityRate,
    top_stories: Vec<String>,
    now: DateTime<Utc>,
) -> Alert {
    let hour = now.timestamp() / 3600;
    let key = format!("surge:{}:{hour}", entity.id);
    let story = format!("surge-{}", entity.id);
    Alert {
        v: FORMAT_VERSION,
        id: alert_id(now, "surge", "", &key),
        ts: timestamp(now),
        rule: "surge".to_string(),
        title: format!("Surge: {}", entity.name),
        severity: Severity::Medium,
        shadow: false,
        item: AlertItem {
            key,
            title: format!(
                "{} in {} items in the last hour (usually {:.1} an hour)",
                entity.name, rate.last_hour, rate.baseline
            ),
            link: None,
            published: None,
            feed: AlertFeed {
                url: String::new(),
                name: Some("newswatch".to_string()),
            },
        },
        story,
        sources: 1,
        matches: Vec::new(),
        entities: vec![AlertEntity {
            name: entity.name.clone(),
            kind: kind.to_string(),
            count: rate.last_hour as usize,
            guessed: false,
        }],
        surge: Some(SurgeInfo {
            entity: entity.name.clone(),
            rule: None,
            last_hour: rate.last_hour,
            baseline: (rate.baseline * 100.0).round() / 100.0,
            top_stories,
        }),
        followup: None,
    }
}

/// The alert for a rule suddenly matching far more items than usual.
pub fn rule_surge_alert(
    rule: &RuleConfig,
    rate: &crate::store::EntityRate,
    top_stories: Vec<String>,
    now: DateTime<Utc>,
) -> Alert {
    let id = rule.id.get_ref();
    let hour = now.timestamp() / 3600;
    let key = format!("surge:rule:{id}:{hour}");
    Alert {
        v: FORMAT_VERSION,
        id: alert_id(now, "surge", "", &key),
        ts: timestamp(now),
        rule: "surge".to_string(),
        title: format!("Surge: {}", rule.title()),
        severity: rule.severity,
        shadow: rule.shadow,
        item: AlertItem {
            key,
            title: format!(
                "rule {id} matched {} items in the last hour (usually {:.1} an hour)",
                rate.last_hour, rate.baseline
            ),
            link: None,
            published: None,
            feed: AlertFeed {
                url: String::new(),
                name: Some("newswatch".to_string()),
            },
        },
        story: rule_surge_story(id),
        sources: 1,
        matches: Vec::new(),
        entities: Vec::new(),
        surge: Some(SurgeInfo {
            entity: String::new(),
            rule: Some(id.clone()),
            last_hour: rate.last_hour,
            baseline: (rate.baseline * 100.0).round() / 100.0,
            top_stories,
        }),
        followup: None,
    }
}

/// The story key under which a rule's surges are deduplicated.
pub fn rule_surge_story(rule: &str) -> String {
    format!("surge-rule-{rule}")
}

/// A follow-up to `original` (a rule's alert on a story): the story has now
/// been carried by `sources` feeds, reaching the threshold `reached`. The item
/// and explanation stay those of the first alert; the id is stable for the
/// story, rule and threshold.
pub fn followup_alert(original: &Alert, reached: u32, sources: u32, now: DateTime<Utc>) -> Alert {
    let marker = followup_key(reached);
    Alert {
        id: alert_id(now, &original.rule, &original.story, &marker),
        ts: timestamp(now),
        title: format!("{} (now {sources} sources)", original.title),
        sources,
        followup: Some(reached),
        ..original.clone()
    }
}

/// The item key a follow-up alert is recorded under in the state.
pub fn followup_key(reached: u32) -> String {
    format!("followup:{reached}")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertItem {
    pub key: String,
    pub title: String,
    pub link: Option<String>,
    pub published: Option<String>,
    pub feed: AlertFeed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertFeed {
    pub url: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertMatch {
    pub term: String,
    pub field: String,
    pub snippet: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEntity {
    pub name: String,
    pub kind: String,
    pub count: usize,
    /// True for a person name guessed from context, not from the gazetteer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub guessed: bool,
}

/// The entities of a document, most mentioned first: gazetteer entities,
/// then guessed person names.
pub fn document_entities(
    document: &Document,
    gazetteer: &Gazetteer,
    limit: usize,
) -> Vec<AlertEntity> {
    let mut out: Vec<AlertEntity> = summarize(&document.mentions)
        .into_iter()
        .map(|(entity, count)| {
            let e = gazetteer.entity(entity);
            AlertEntity {
                name: e.name.clone(),
                kind: gazetteer.kind_name(e.kind).to_string(),
                count,
                guessed: false,
            }
        })
        .collect();
    for name in &document.guessed_names {
        out.push(AlertEntity {
            name: name.clone(),
            kind: "person".to_string(),
            count: document.guessed.iter().filter(|g| g.name == *name).count(),
            guessed: true,
        });
    }
    out.truncate(limit);
    out
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A ULID-shaped id: 48 bits of milliseconds, then 80 bits of a hash of
/// (rule, feed URL, item key).
pub fn alert_id(created: DateTime<Utc>, rule: &str, feed_url: &str, item_key: &str) -> String {
    let mut hash = Sha256::new();
    for part in [rule, feed_url, item_key] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let ms = created.timestamp_millis().clamp(0, (1 << 48) - 1) as u128;
    let hash80 = digest[..10]
        .iter()
        .fold(0u128, |acc, &b| (acc << 8) | b as u128);
    let value = (ms << 80) | hash80;
    (0..26)
        .rev()
        .map(|i| CROCKFORD[((value >> (i * 5)) & 31) as usize] as char)
        .collect()
}

/// The story an item belongs to: items with the same folded title share one.
pub fn story_id(item: &Item) -> String {
    let words = fold_words(&item.title);
    let basis = if words.is_empty() {
        item.key.clone()
    } else {
        words.join(" ")
    };
    let digest = Sha256::digest(basis.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 3339 in UTC with a `Z`, to the second.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Everything needed to build alerts for one item.
pub struct AlertContext<'a> {
    pub feed_url: &'a str,
    pub feed_name: Option<&'a str>,
    pub item: &'a Item,
    pub document: &'a Document,
    pub gazetteer: &'a Gazetteer,
    pub now: DateTime<Utc>,
}

impl AlertContext<'_> {
    /// The alert for `rule` firing with `hits`.
    pub fn alert(&self, rule: &RuleConfig, hits: &[Hit], story: &str) -> Alert {
        let entities = document_entities(self.document, self.gazetteer, MAX_ENTITIES);
        Alert {
            v: FORMAT_VERSION,
            id: alert_id(self.now, rule.id.get_ref(), self.feed_url, &self.item.key),
            ts: timestamp(self.now),
            rule: rule.id.get_ref().clone(),
            title: rule.title().to_string(),
            severity: rule.severity,
            shadow: rule.shadow,
            item: AlertItem {
                key: self.item.key.clone(),
                title: self.item.title.clone(),
                link: self.item.link.clone(),
                published: self.item.published.map(timestamp),
                feed: AlertFeed {
                    url: self.feed_url.to_string(),
                    name: self.feed_name.map(str::to_string),
                },
            },
            story: story.to_string(),
            sources: 1,
            matches: hits
                .iter()
                .map(|h| AlertMatch {
                    term: h.term.clone(),
                    field: Field::name(h.field).to_string(),
                    snippet: h.snippet.clone(),
                })
                .collect(),
            entities,
            surge: None,
            followup: None,
        }
    }
}

/// A feed-health event raised through the normal alert path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedHealth {
    Down,
    Recovered,
}

/// The alert for a feed that has been failing since `since` (Down) or works
/// again after an outage that began at `since` (Recovered).
pub fn feed_health_alert(
    health: FeedHealth,
    feed: &crate::config::Feed,
    since: DateTime<Utc>,
    detail: &str,
    now: DateTime<Utc>,
) -> Alert {
    let (rule, title, severity, text) = match health {
        FeedHealth::Down => (
            "feed-down",
            "Feed down",
            Severity::Medium,
            format!(
                "{} has failed since {}: {detail}",
                feed.display_name(),
                timestamp(since)
            ),
        ),
        FeedHealth::Recovered => (
            "feed-recovered",
            "Feed recovered",
            Severity::Low,
            format!(
                "{} works again after failing since {}",
                feed.display_name(),
                timestamp(since)
            ),
        ),
    };
    let key = format!("{rule}:{}", since.timestamp());
    let story = {
        let digest = Sha256::digest(format!("{}\0{}", feed.url, since.timestamp()).as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    };
    Alert {
        v: FORMAT_VERSION,
        id: alert_id(now, rule, &feed.url, &key),
        ts: timestamp(now),
        rule: rule.to_string(),
        title: title.to_string(),
        severity,
        shadow: false,
        item: AlertItem {
            key,
            title: text,
            link: feed.url.starts_with("http").then(|| feed.url.clone()),
            published: None,
            feed: AlertFeed {
                url: feed.url.clone(),
                name: feed.name.clone(),
            },
        },
        story,
        sources: 1,
        matches: Vec::new(),
        entities: Vec::new(),
        surge: None,
        followup: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_ulid_shaped_and_deterministic() {
        let t = DateTime::parse_from_rfc3339("2026-11-25T17:40:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let a = alert_id(t, "r", "http://f", "k");
        assert_eq!(a.len(), 26);
        assert!(a.starts_with("01M"), "{a}");
        assert_eq!(a, alert_id(t, "r", "http://f", "k"));
        assert_ne!(a, alert_id(t, "r2", "http://f", "k"));
        let later = alert_id(t + chrono::Duration::milliseconds(1), "r", "http://f", "k");
        assert!(later > a, "ids sort by time");
        assert_eq!(
            later[10..],
            a[10..],
            "the hash part does not depend on time"
        );
    }
}
