//! Configuration: the TOML schema, where it is found, and validation.
//!
//! [`Config::load`] finds the file (`--config`, `$NEWSWATCH_CONFIG`,
//! `$XDG_CONFIG_HOME/newswatch/newswatch.toml`, else the built-in default),
//! parses it with `deny_unknown_fields`, and validates everything at once:
//! durations, ids, URLs, and every rule query (compiled against the
//! gazetteer). Each problem is a [`Diagnostic`] located at `file:line:col` with
//! the source line and a caret. A loaded config is plain data; nothing here
//! touches the network or the state.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use toml::Spanned;

use crate::entities::{Gazetteer, GazetteerFile};
use crate::rules::{self, RuleSet};

/// The default configuration, embedded in the binary.
pub const BUILTIN_CONFIG: &str = include_str!("../config/newswatch.toml");
const BUILTIN_NAME: &str = "<builtin newswatch.toml>";

/// A duration written the human way: "10m", "24h", "1h 30m", "0s".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text)
            .map(HumanDuration)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid duration {text:?} ({e}); write e.g. \"90s\", \"10m\", \"24h\""
                ))
            })
    }
}

/// How urgent an alert is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        [
            Severity::Info,
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Defaults {
    pub interval: Spanned<HumanDuration>,
    pub catch_up: HumanDuration,
    /// Move each feed's interval between `min_interval` and `max_interval`
    /// following how often it publishes (RSS `<ttl>` is honoured as a floor).
    pub adaptive: bool,
    pub min_interval: HumanDuration,
    pub max_interval: HumanDuration,
    /// A feed failing for longer than this raises one `feed-down` alert (and a
    /// `feed-recovered` one when it works again); "0s" turns this off.
    pub feed_down_after: HumanDuration,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            interval: Spanned::new(0..0, HumanDuration(Duration::from_secs(600))),
            catch_up: HumanDuration(Duration::from_secs(24 * 3600)),
            adaptive: false,
            min_interval: HumanDuration(Duration::from_secs(120)),
            max_interval: HumanDuration(Duration::from_secs(2 * 3600)),
            feed_down_after: HumanDuration(Duration::from_secs(6 * 3600)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// The alert log; relative paths resolve against the state directory.
    pub path: PathBuf,
    /// Rotate the log when it would grow past this many bytes (0: never; use
    /// logrotate instead, which newswatch also follows).
    pub max_bytes: u64,
    /// Rotated files kept (`alerts.jsonl.1` … `.N`).
    pub keep: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            path: PathBuf::from("alerts.jsonl"),
            max_bytes: 0,
            keep: 5,
        }
    }
}

impl LogConfig {
    /// The rotation policy, if size-based rotation is on.
    pub fn rotation(&self) -> Option<crate::sinks::jsonl::Rotation> {
        (self.max_bytes > 0).then_some(crate::sinks::jsonl::Rotation {
            max_bytes: self.max_bytes,
            keep: self.keep,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    pub desktop: bool,
    pub min_severity: Severity,
    /// Desktop notifications per minute at most; the rest are summed up in one
    /// "N more alerts" notification (0: no limit). The log still gets every alert.
    pub max_per_minute: u32,
    /// Also print each alert as one JSON line on stdout.
    pub stdout: bool,
    /// A command run for each alert with the alert's JSON line on stdin
    /// (program and arguments; no shell).
    pub exec: Vec<String>,
    pub exec_timeout: HumanDuration,
    pub exec_min_severity: Severity,
    /// The program that opens an alert's link when its desktop notification
    /// is clicked (the link is appended); `[]` turns clicking off.
    pub open_with: Vec<String>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            desktop: true,
            min_severity: Severity::Medium,
            max_per_minute: 5,
            stdout: false,
            exec: Vec::new(),
            exec_timeout: HumanDuration(Duration::from_secs(10)),
            exec_min_severity: Severity::Info,
            open_with: vec!["xdg-open".to_string()],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Where state.sqlite and relative log paths live; default `$XDG_STATE_HOME/newswatch`.
    pub dir: Option<PathBuf>,
    /// How long item text is kept for `match --since` replays.
    pub retention: HumanDuration,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            dir: None,
            retention: HumanDuration(Duration::from_secs(7 * 24 * 3600)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchConfig {
    pub timeout: HumanDuration,
    pub connect_timeout: HumanDuration,
    /// Largest response body accepted, in bytes.
    pub max_bytes: u64,
    pub max_redirects: usize,
    /// Requests in flight at once, overall and per host.
    pub concurrency: usize,
    pub per_host: usize,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            timeout: HumanDuration(Duration::from_secs(30)),
            connect_timeout: HumanDuration(Duration::from_secs(10)),
            max_bytes: 16 * 1024 * 1024,
            max_redirects: 5,
            concurrency: 32,
            per_host: 2,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EntitiesConfig {
    /// Use the built-in gazetteer (countries, organisations, people).
    pub builtin: bool,
    /// Extra gazetteer files; their entities extend or replace built-in ones by id.
    pub files: Vec<PathBuf>,
}

impl Default for EntitiesConfig {
    fn default() -> Self {
        EntitiesConfig {
            builtin: true,
            files: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    pub url: Spanned<String>,
    pub name: Option<String>,
    pub interval: Option<Spanned<HumanDuration>>,
    /// Overrides `defaults.adaptive` for this feed.
    pub adaptive: Option<bool>,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub id: Spanned<String>,
    pub title: Option<String>,
    #[serde(default)]
    pub severity: Severity,
    pub query: Spanned<String>,
    /// At most one alert per rule per story within this window.
    pub cooldown: Option<HumanDuration>,
    /// Evaluate and log, but never notify.
    #[serde(default)]
    pub shadow: bool,
}

impl RuleConfig {
    pub fn title(&self) -> &str {
        self.title.as_deref().unwrap_or(self.id.get_ref())
    }
}

/// The file as written.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub notify: NotifyConfig,
    #[serde(default)]
    pub state: StateConfig,
    #[serde(default)]
    pub fetch: FetchConfig,
    #[serde(default)]
    pub entities: EntitiesConfig,
    #[serde(default)]
    pub feeds: Vec<FeedConfig>,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    #[serde(default)]
    pub webhooks: Vec<crate::sinks::webhook::WebhookConfig>,
    #[serde(default)]
    pub metrics: crate::metrics::MetricsConfig,
    #[serde(default)]
    pub stories: StoriesConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoriesConfig {
    /// How long a story stays open for new sources after its last item.
    pub window: HumanDuration,
    /// Raise `surge` alerts when an entity is suddenly everywhere.
    pub surge: bool,
    /// The last hour must exceed the usual hourly rate by this factor…
    pub surge_factor: f64,
    /// …and count at least this many items.
    pub surge_min_items: u32,
    /// At most one surge alert per entity within this window.
    pub surge_cooldown: HumanDuration,
    /// Raise `surge` alerts also when a rule suddenly matches far more items
    /// than usual (same factor, minimum and cooldown).
    pub surge_rules: bool,
    /// A follow-up alert when a story a rule alerted on reaches this many
    /// sources (each number once per rule and story; empty: none).
    pub followup_sources: Vec<u32>,
}

impl Default for StoriesConfig {
    fn default() -> Self {
        StoriesConfig {
            window: HumanDuration(Duration::from_secs(48 * 3600)),
            surge: true,
            surge_factor: 4.0,
            surge_min_items: 10,
            surge_cooldown: HumanDuration(Duration::from_secs(6 * 3600)),
            surge_rules: true,
            followup_sources: vec![5, 20],
        }
    }
}

/// Largest configuration, entities or OPML file read: far above any real
/// one, and a path such as /dev/zero ends in an error instead of exhausting
/// memory.
const MAX_TEXT_FILE: u64 = 64 << 20;

/// Reads a file a person named (configuration, entities, OPML) of at most
/// [`MAX_TEXT_FILE`] bytes.
pub fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_TEXT_FILE + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_TEXT_FILE {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_TEXT_FILE >> 20
        )));
    }
    Ok(bytes)
}

/// [`read_capped`], for a file that must be UTF-8 text.
pub(crate) fn read_text_file(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_capped(path)?).map_err(|e| {
        // Where the first byte that is not UTF-8 is, as an editor counts.
        let bytes = e.as_bytes();
        let valid = e.utf8_error().valid_up_to();
        let before = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit('\n')
            .next()
            .unwrap_or_default()
            .chars()
            .count()
            + 1;
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "not UTF-8 at line {line}, column {column} (byte 0x{:02x}): save the file as UTF-8",
                bytes[valid]
            ),
        )
    })
}

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Builtin,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Builtin => f.write_str(BUILTIN_NAME),
        }
    }
}

/// A feed as the pipeline sees it: URL resolved, interval decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Feed {
    pub url: String,
    pub name: Option<String>,
    pub interval: Duration,
    pub adaptive: bool,
    pub tags: Vec<String>,
}

impl Feed {
    /// The display name: the configured name, else the URL.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.url)
    }
}

/// A validated configuration with its compiled rules and gazetteer.
#[derive(Debug, Clone)]
pub struct Config {
    pub origin: Origin,
    pub raw: RawConfig,
    pub feeds: Vec<Feed>,
    pub gazetteer: Gazetteer,
    pub rules: RuleSet,
    pub state_dir: PathBuf,
    pub log_path: PathBuf,
    pub warnings: Vec<String>,
}

/// One located problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
    /// The offending source line and the caret's start column and width.
    pub source_line: String,
    pub caret_width: usize,
}

/// The most characters of a source line an error shows.
const SHOWN_CHARS: usize = 120;

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}:{}:{}: error: {}",
            self.file, self.line, self.col, self.message
        )?;
        if !self.source_line.is_empty() {
            // A long line (a rule of thousands of terms) is shown around the
            // caret only.
            let chars: Vec<char> = self.source_line.chars().collect();
            let at = self.col.saturating_sub(1).min(chars.len());
            let start = if chars.len() > SHOWN_CHARS {
                at.saturating_sub(SHOWN_CHARS / 3)
            } else {
                0
            };
            let end = (start + SHOWN_CHARS).min(chars.len());
            let before = if start > 0 { "…" } else { "" };
            let after = if end < chars.len() { "…" } else { "" };
            let shown: String = chars[start..end].iter().collect();
            let gutter = self.line.to_string().len();
            writeln!(f, "{:gutter$} |", "")?;
            writeln!(f, "{} | {before}{shown}{after}", self.line)?;
            let pad: String = before
                .chars()
                .map(|_| ' ')
                .chain(
                    chars[start..at]
                        .iter()
                        .map(|&c| if c == '\t' { '\t' } else { ' ' }),
                )
                .collect();
            let width = self.caret_width.max(1).min(end.saturating_sub(at).max(1));
            write!(f, "{:gutter$} | {pad}{}", "", "^".repeat(width))?;
        }
        Ok(())
    }
}

/// Everything wrong with a configuration.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {cause}")]
    Read { path: PathBuf, cause: String },
    #[error("{}", render(.0))]
    Invalid(Vec<Diagnostic>),
}

fn render(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for (i, d) in diagnostics.iter().enumerate() {
        if i > 0 {
            out.push_str("\n\n");
        }
        out.push_str(&d.to_string());
    }
    let n = diagnostics.len();
    out.push_str(&format!(
        "\n\n{n} error{} in configuration",
        if n == 1 { "" } else { "s" }
    ));
    out
}

/// 1-based line and column (in characters) of byte offset `at` in `text`.
pub fn line_col(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, text[line_start..at].chars().count() + 1)
}

struct Locator<'a> {
    file: String,
    text: &'a str,
}

impl Locator<'_> {
    fn at(&self, span: std::ops::Range<usize>, message: impl Into<String>) -> Diagnostic {
        let (line, col) = line_col(self.text, span.start);
        let source_line = self.text.lines().nth(line - 1).unwrap_or("").to_string();
        let line_rest = source_line.chars().count().saturating_sub(col - 1);
        let width = self
            .text
            .get(span.clone())
            .map_or(1, |s| s.chars().take_while(|&c| c != '\n').count());
        Diagnostic {
            file: self.file.clone(),
            line,
            col,
            message: message.into(),
            caret_width: width.clamp(1, line_rest.max(1)),
            source_line,
        }
    }
}

/// Maps a byte offset inside a TOML string's value to the byte offset in the
/// file, given the span of the whole string token (quotes included).
fn value_offset(text: &str, token: std::ops::Range<usize>, offset_in_value: usize) -> usize {
    let raw = text.get(token.clone()).unwrap_or("");
    let (body_start, basic) = if raw.starts_with("'''") || raw.starts_with("\"\"\"") {
        let mut start = 3;
        if raw[3..].starts_with("\r\n") {
            start += 2;
        } else if raw[3..].starts_with('\n') {
            start += 1;
        }
        (start, raw.starts_with('"'))
    } else if raw.starts_with('\'') || raw.starts_with('"') {
        (1, raw.starts_with('"'))
    } else {
        return token.start;
    };
    if !basic {
        return token.start + body_start + offset_in_value;
    }
    // Basic strings: walk escapes so the caret lands on the right character.
    let body = &raw[body_start..];
    let mut decoded = 0;
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        if decoded >= offset_in_value {
            return token.start + body_start + i;
        }
        if c == '\\' {
            match chars.next() {
                Some((_, 'u')) => {
                    let code: String = chars.by_ref().take(4).map(|(_, c)| c).collect();
                    decoded += u32::from_str_radix(&code, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .map_or(1, char::len_utf8);
                }
                Some((_, 'U')) => {
                    let code: String = chars.by_ref().take(8).map(|(_, c)| c).collect();
                    decoded += u32::from_str_radix(&code, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .map_or(1, char::len_utf8);
                }
                _ => decoded += 1,
            }
        } else {
            decoded += c.len_utf8();
        }
    }
    token.start + body_start + body.len()
}

fn valid_rule_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

fn xdg(var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        _ => home().join(fallback),
    }
}

/// Where the value at `path` (keys, and indexes into arrays of tables) is
/// written in the parsed text `doc`; 0..0 (the start) when it is not.
fn written_at(doc: Option<&toml_edit::Document<&str>>, path: &[&str]) -> std::ops::Range<usize> {
    let mut item = match doc {
        Some(doc) => doc.as_item(),
        None => return 0..0,
    };
    for step in path {
        let next = match step.parse::<usize>() {
            Ok(index) => item.get(index),
            Err(_) => item.get(*step),
        };
        match next {
            Some(next) => item = next,
            None => return 0..0,
        }
    }
    item.span().unwrap_or(0..0)
}

/// `$XDG_CONFIG_HOME/newswatch/newswatch.toml`.
pub fn default_config_path() -> PathBuf {
    xdg("XDG_CONFIG_HOME", ".config")
        .join("newswatch")
        .join("newswatch.toml")
}

/// `$XDG_STATE_HOME/newswatch`.
pub fn default_state_dir() -> PathBuf {
    xdg("XDG_STATE_HOME", ".local/state").join("newswatch")
}

impl Config {
    /// Finds and loads the configuration: `explicit` (from `--config`), else
    /// `$NEWSWATCH_CONFIG`, else the XDG path if it exists, else the built-in.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let path = explicit
            .map(Path::to_path_buf)
            .or_else(|| {
                std::env::var_os("NEWSWATCH_CONFIG")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .or_else(|| Some(default_config_path()).filter(|p| p.exists()));
        match path {
            Some(path) => {
                let text = read_text_file(&path).map_err(|e| ConfigError::Read {
                    path: path.clone(),
                    cause: e.to_string(),
                })?;
                Config::from_str(&text, Origin::File(path))
            }
            None => Config::from_str(BUILTIN_CONFIG, Origin::Builtin),
        }
    }

    /// Parses and validates configuration text.
    pub fn from_str(text: &str, origin: Origin) -> Result<Config, ConfigError> {
        let locator = Locator {
            file: origin.to_string(),
            text,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            ConfigError::Invalid(vec![locator.at(span, e.message().trim().to_string())])
        })?;
        let base_dir = match &origin {
            Origin::File(path) => path.parent().map(Path::to_path_buf).unwrap_or_default(),
            Origin::Builtin => std::env::current_dir().unwrap_or_default(),
        };
        let mut problems = Vec::new();
        let mut warnings = Vec::new();

        let check_interval = |interval: &Spanned<HumanDuration>,
                              problems: &mut Vec<Diagnostic>,
                              warnings: &mut Vec<String>| {
            let d = interval.get_ref().0;
            if d < Duration::from_secs(1) {
                problems.push(locator.at(interval.span(), "interval must be 1s or more"));
            } else if d < Duration::from_secs(60) {
                let (line, col) = line_col(text, interval.span().start);
                warnings.push(format!(
                    "{}:{line}:{col}: interval {} is under a minute; fine for local feeds, impolite to publishers",
                    locator.file,
                    humantime::format_duration(d)
                ));
            }
        };
        if raw.defaults.interval.span() != (0..0) {
            check_interval(&raw.defaults.interval, &mut problems, &mut warnings);
        }
        // Settings checked after parsing are located through a second,
        // span-keeping parse of the text.
        let written = toml_edit::Document::parse(text).ok();
        let at = |path: &[&str]| written_at(written.as_ref(), path);
        if raw.defaults.min_interval > raw.defaults.max_interval {
            problems.push(locator.at(
                at(&["defaults", "min_interval"]),
                "defaults.min_interval must not exceed defaults.max_interval",
            ));
        }
        if raw.fetch.max_bytes < 1024 {
            problems.push(locator.at(
                at(&["fetch", "max_bytes"]),
                "fetch.max_bytes must be at least 1024",
            ));
        }
        if raw.stories.followup_sources.iter().any(|&n| n < 2) {
            problems.push(locator.at(
                at(&["stories", "followup_sources"]),
                "stories.followup_sources must list numbers of 2 or more (the first alert has 1 source)",
            ));
        }
        if !raw.stories.surge_factor.is_finite() || raw.stories.surge_factor <= 1.0 {
            problems.push(locator.at(
                at(&["stories", "surge_factor"]),
                "stories.surge_factor must be greater than 1",
            ));
        }
        for (key, value) in [
            ("concurrency", raw.fetch.concurrency),
            ("per_host", raw.fetch.per_host),
        ] {
            if value == 0 {
                problems.push(locator.at(
                    at(&["fetch", key]),
                    format!("fetch.{key} must be at least 1"),
                ));
            }
        }

        let mut feeds = Vec::new();
        let mut seen_urls = HashSet::new();
        for feed in &raw.feeds {
            let url = feed.url.get_ref().trim();
            let resolved = match resolve_feed_url(url, &base_dir) {
                Ok(u) => u,
                Err(message) => {
                    problems.push(locator.at(feed.url.span(), message));
                    continue;
                }
            };
            if !seen_urls.insert(resolved.clone()) {
                problems
                    .push(locator.at(feed.url.span(), format!("feed {resolved} is listed twice")));
            }
            if let Some(interval) = &feed.interval {
                check_interval(interval, &mut problems, &mut warnings);
            }
            feeds.push(Feed {
                url: resolved,
                name: feed.name.clone(),
                interval: feed
                    .interval
                    .as_ref()
                    .map_or(raw.defaults.interval.get_ref().0, |i| i.get_ref().0),
                adaptive: feed.adaptive.unwrap_or(raw.defaults.adaptive),
                tags: feed.tags.clone(),
            });
        }

        let mut gazetteer_files = Vec::new();
        if raw.entities.builtin {
            gazetteer_files.push(
                GazetteerFile::parse(crate::entities::BUILTIN_ENTITIES, "<builtin entities.toml>")
                    .expect("the embedded gazetteer is valid: a unit test parses it"),
            );
        }
        for file in &raw.entities.files {
            let path = base_dir.join(file);
            let parsed = read_text_file(&path)
                .map_err(|e| format!("cannot read entities file {}: {e}", path.display()))
                .and_then(|t| {
                    GazetteerFile::parse(&t, &path.display().to_string()).map_err(|e| e.to_string())
                });
            match parsed {
                Ok(f) => gazetteer_files.push(f),
                Err(message) => problems.push(locator.at(0..0, message)),
            }
        }
        let gazetteer = Gazetteer::build(gazetteer_files);

        let mut ids = HashSet::new();
        for rule in &raw.rules {
            let id = rule.id.get_ref();
            if !valid_rule_id(id) {
                problems.push(locator.at(
                    rule.id.span(),
                    format!("rule id {id:?} must use only a-z, 0-9 and '-'"),
                ));
            }
            if !ids.insert(id.as_str()) {
                problems.push(locator.at(rule.id.span(), format!("rule id {id:?} is used twice")));
            }
        }
        let rules = match rules::compile(
            raw.rules
                .iter()
                .map(|r| (r.id.get_ref().as_str(), r.query.get_ref().as_str())),
            &gazetteer,
        ) {
            Ok(rules) => rules,
            Err(errors) => {
                for error in errors {
                    let rule = raw
                        .rules
                        .iter()
                        .find(|r| *r.id.get_ref() == error.rule)
                        .expect("compile reports errors by the ids it was given");
                    let start = value_offset(text, rule.query.span(), error.error.span.start);
                    let end = value_offset(text, rule.query.span(), error.error.span.end);
                    problems.push(locator.at(
                        start..end.max(start + 1),
                        format!("rule \"{}\": {}", error.rule, error.error.message),
                    ));
                }
                RuleSet::empty()
            }
        };
        for rule in &raw.rules {
            for warning in rules::lint(rule.query.get_ref()) {
                let at = value_offset(text, rule.query.span(), warning.span.start);
                let (line, col) = line_col(text, at);
                warnings.push(format!(
                    "{}:{line}:{col}: rule \"{}\": {}",
                    locator.file,
                    rule.id.get_ref(),
                    warning.message
                ));
            }
        }

        if raw.notify.exec_timeout.0 < Duration::from_secs(1) {
            problems.push(locator.at(
                at(&["notify", "exec_timeout"]),
                "notify.exec_timeout must be 1s or more",
            ));
        }
        let mut hook_urls = HashSet::new();
        for (i, hook) in raw.webhooks.iter().enumerate() {
            let i = i.to_string();
            let at = |key: &str| at(&["webhooks", &i, key]);
            // Alerts wait for a webhook under its URL: two with one URL
            // would share a queue and post each alert twice.
            if !hook_urls.insert(hook.url.trim()) {
                problems
                    .push(locator.at(at("url"), format!("webhook {} is listed twice", hook.url)));
            }
            if let Err(e) = reqwest::Url::parse(&hook.url) {
                problems.push(locator.at(
                    at("url"),
                    format!("webhook url {:?} is invalid: {e}", hook.url),
                ));
            }
            if hook.timeout.0 < Duration::from_secs(1) {
                problems.push(locator.at(
                    at("timeout"),
                    format!("webhook {}: timeout must be 1s or more", hook.url),
                ));
            }
            // A token that cannot be sent would be dropped without a word.
            if hook.resolved_token().is_some() {
                let header_ok =
                    reqwest::header::HeaderName::from_bytes(hook.header.as_bytes()).is_ok();
                let value_ok = hook.resolved_token().is_some_and(|token| {
                    reqwest::header::HeaderValue::from_str(&format!("{} {token}", hook.scheme))
                        .is_ok()
                });
                if !header_ok {
                    problems.push(locator.at(
                        at("header"),
                        format!(
                            "webhook {}: header {:?} is not a valid HTTP header name",
                            hook.url, hook.header
                        ),
                    ));
                } else if !value_ok {
                    problems.push(locator.at(
                        at(if hook.token.is_some() { "token" } else { "scheme" }),
                        format!(
                            "webhook {}: the scheme or token holds characters an HTTP header cannot carry",
                            hook.url
                        ),
                    ));
                }
            }
            if let Some(var) = &hook.token_env
                && std::env::var_os(var).is_none()
                && hook.token.is_none()
            {
                warnings.push(format!(
                    "webhook {}: environment variable {var} is not set; posting without a token",
                    hook.url
                ));
            }
            if hook.token.is_some()
                && let Origin::File(path) = &origin
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path)
                    .map(|m| m.permissions().mode())
                    .unwrap_or(0);
                if mode & 0o044 != 0 {
                    warnings.push(format!(
                            "{} holds a webhook token and is readable by other users (mode {:o}); chmod 600 it, or use token_env",
                            path.display(),
                            mode & 0o777
                        ));
                }
            }
        }

        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems));
        }

        let state_dir = raw
            .state
            .dir
            .as_ref()
            .map_or_else(default_state_dir, |d| base_dir.join(d));
        let log_path = state_dir.join(&raw.log.path);
        Ok(Config {
            origin,
            feeds,
            gazetteer,
            rules,
            state_dir,
            log_path,
            warnings,
            raw,
        })
    }

    /// The configured rule behind compiled rule `index`.
    pub fn rule(&self, index: usize) -> &RuleConfig {
        &self.raw.rules[index]
    }

    /// The configured rule with this id, if any.
    pub fn rule_by_id(&self, id: &str) -> Option<&RuleConfig> {
        self.raw.rules.iter().find(|r| r.id.get_ref() == id)
    }
}

/// Accepts `http(s)://…`, `file://…` and filesystem paths (relative ones
/// resolve against `base_dir`); returns the canonical URL string.
pub fn resolve_feed_url(url: &str, base_dir: &Path) -> Result<String, String> {
    if url.is_empty() {
        return Err("feed url is empty".into());
    }
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return reqwest::Url::parse(url)
            .map(|u| u.to_string())
            .map_err(|e| format!("invalid feed url {url:?}: {e}"));
    }
    if lower.starts_with("file://") {
        return reqwest::Url::parse(url)
            .map_err(|e| format!("invalid file url {url:?}: {e}"))
            .and_then(|u| {
                u.to_file_path()
                    .map_err(|()| format!("file url {url:?} has no local path"))
            })
            .map(|p| format!("file://{}", p.display()));
    }
    if let Some((scheme, _)) = url.split_once("://") {
        return Err(format!(
            "unsupported scheme {scheme:?} in feed url; use http, https, file or a path"
        ));
    }
    Ok(format!("file://{}", base_dir.join(url).display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diagnostics(text: &str) -> Vec<Diagnostic> {
        match Config::from_str(text, Origin::File("t.toml".into())) {
            Err(ConfigError::Invalid(d)) => d,
            other => panic!("expected errors, got {other:?}"),
        }
    }

    #[test]
    fn builtin_config_is_valid() {
        let config = Config::from_str(BUILTIN_CONFIG, Origin::Builtin).unwrap();
        assert!(config.feeds.len() >= 3);
        let ids: Vec<&str> = config
            .raw
            .rules
            .iter()
            .map(|r| r.id.get_ref().as_str())
            .collect();
        assert!(
            ids.contains(&"troop-deployment") && ids.contains(&"eu-summit"),
            "{ids:?}"
        );
    }

    #[test]
    fn an_endless_entities_file_is_refused() {
        let d = diagnostics("[entities]\nfiles = [\"/dev/zero\"]\n");
        assert!(
            d[0].message.contains("/dev/zero") && d[0].message.contains("larger than 64 MiB"),
            "{}",
            d[0].message
        );
    }

    #[test]
    fn a_file_that_is_not_utf8_is_refused_where_it_stops_being_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latin1.toml");
        // "café" in Latin-1 on the third line, after a two-byte UTF-8 "é".
        std::fs::write(&path, b"[log]\n# \xc3\xa9\n# caf\xe9\n").unwrap();
        let error = read_text_file(&path).unwrap_err().to_string();
        assert_eq!(
            error,
            "not UTF-8 at line 3, column 6 (byte 0xe9): save the file as UTF-8"
        );
    }

    #[test]
    fn story_settings_are_checked() {
        let d = diagnostics("[stories]\nfollowup_sources = [1, 5]\nsurge_factor = 0.5\n");
        let messages: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].contains("followup_sources"), "{messages:?}");
        assert!(messages[1].contains("surge_factor"), "{messages:?}");
        let config =
            Config::from_str("[stories]\nfollowup_sources = []\n", Origin::Builtin).unwrap();
        assert!(config.raw.stories.followup_sources.is_empty());
    }

    #[test]
    fn unknown_keys_are_located() {
        let d = diagnostics("[defaults]\ninterval = \"5m\"\nintervall = \"5m\"\n");
        assert_eq!((d[0].line, d[0].col), (3, 1));
        assert!(
            d[0].message.contains("unknown field `intervall`"),
            "{}",
            d[0].message
        );
    }

    #[test]
    fn settings_checked_after_parsing_are_located() {
        let d = diagnostics(
            "[fetch]\nmax_bytes = 10\n\n[[webhooks]]\nurl = \"http://x/\"\n\n[[webhooks]]\nurl = \"http://y/\"\ntimeout = \"0s\"\n",
        );
        let at: Vec<(usize, usize)> = d.iter().map(|d| (d.line, d.col)).collect();
        assert_eq!(at, [(2, 13), (9, 11)], "{d:?}");
        assert!(
            d[1].message.contains("webhook http://y/: timeout"),
            "{}",
            d[1].message
        );
    }

    #[test]
    fn a_long_line_is_shown_around_the_caret() {
        let query = format!("{} AND NOT", "word ".repeat(20_000));
        let d = diagnostics(&format!("[[rules]]\nid = \"long\"\nquery = '{query}'\n"));
        let text = d[0].to_string();
        assert!(text.len() < 1_000, "{} bytes", text.len());
        assert!(text.contains("word  AND NOT'"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        let shown = lines[2].split_once(" | ").unwrap().1;
        let caret = lines[3].split_once(" | ").unwrap().1;
        // The caret stands under the end of the query, where a term is missing.
        let column = caret.chars().take_while(|&c| c == ' ').count();
        let under: String = shown.chars().skip(column).take(1).collect();
        assert_eq!(under, "'", "{text}");
    }

    #[test]
    fn bad_duration_is_located() {
        let d = diagnostics("[defaults]\ninterval = \"ten minutes\"\n");
        assert_eq!(d[0].line, 2);
        assert!(
            d[0].message.contains("invalid duration"),
            "{}",
            d[0].message
        );
    }

    #[test]
    fn all_broken_rules_reported_with_carets() {
        let text = r#"
[[rules]]
id = "a"
query = 'troops AND NOT'

[[rules]]
id = "b"
query = "\"armed forces\" NEAR/0 deploy"

[[rules]]
id = "c"
query = 'kind:contry>=2 troops'
"#;
        let d = diagnostics(text);
        assert_eq!(d.len(), 3, "{d:#?}");
        assert_eq!((d[0].line, d[0].col), (4, 24));
        assert!(d[0].message.contains("expected a term after NOT"));
        assert_eq!((d[1].line, d[1].col), (8, 27), "{}", d[1]);
        assert_eq!(d[1].caret_width, 6);
        assert_eq!((d[2].line, d[2].col), (12, 10));
        assert!(
            d[2].message
                .contains("unknown kind \"contry\" — did you mean country?"),
            "{}",
            d[2].message
        );
        let shown = d[1].to_string();
        assert!(
            shown.contains("t.toml:8:27: error: rule \"b\": NEAR needs a distance"),
            "{shown}"
        );
        assert!(shown.ends_with("^^^^^^"), "{shown}");
    }

    #[test]
    fn duplicate_ids_and_bad_urls() {
        let text = r#"
[[feeds]]
url = "gopher://x"
[[rules]]
id = "Same"
query = "a"
[[rules]]
id = "Same"
query = "b"
"#;
        let d = diagnostics(text);
        let messages: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
        assert!(
            messages.iter().any(|m| m.contains("unsupported scheme")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("used twice")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("must use only")),
            "{messages:?}"
        );
    }

    #[test]
    fn feed_paths_resolve() {
        let base = Path::new("/etc/nw");
        assert_eq!(
            resolve_feed_url("feeds/a.xml", base).unwrap(),
            "file:///etc/nw/feeds/a.xml"
        );
        assert_eq!(
            resolve_feed_url("/tmp/a.xml", base).unwrap(),
            "file:///tmp/a.xml"
        );
        assert_eq!(
            resolve_feed_url("file:///tmp/a.xml", base).unwrap(),
            "file:///tmp/a.xml"
        );
        assert_eq!(
            resolve_feed_url("https://Example.org/rss", base).unwrap(),
            "https://example.org/rss"
        );
    }

    #[test]
    fn interval_under_a_second_is_an_error() {
        let d = diagnostics("[[feeds]]\nurl = \"/tmp/x\"\ninterval = \"500ms\"\n");
        assert_eq!(d[0].line, 3);
        assert!(d[0].message.contains("1s or more"));
    }
}
