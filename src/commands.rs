//! The user-facing commands besides the daemon: `check`, `once`, `match`,
//! `tail`. Each turns options into calls on the pipeline's stages and prints
//! the result; the binary only parses flags and maps results to exit codes.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Read, Seek, SeekFrom, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;
use serde::Serialize;

use crate::alerts::Alert;
use crate::config::{Config, Severity, resolve_feed_url};
use crate::document::Document;
use crate::feed::{Item, parse_feed_as};
use crate::fetch::{FetchOutcome, Fetcher, Validators};
use crate::rules::{self, Hit, RuleSet};
use crate::sinks::pretty_line;
use crate::store::Store;
use crate::text::sanitize_terminal;

/// `newswatch init`: writes the commented default config to `path`.
pub fn init(path: &std::path::Path, force: bool) -> anyhow::Result<()> {
    if path.exists() && !force {
        bail!(
            "{} already exists; use --force to overwrite it",
            path.display()
        );
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, crate::config::BUILTIN_CONFIG)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// What `newswatch check` prints for a valid configuration.
pub fn check_summary(config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "config:   {}", config.origin);
    let _ = writeln!(out, "feeds:    {}", config.feeds.len());
    let _ = writeln!(
        out,
        "rules:    {} ({})",
        config.rules.len(),
        config
            .raw
            .rules
            .iter()
            .map(|r| r.id.get_ref().as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        out,
        "entities: {} (kinds: {})",
        config.gazetteer.entities().len(),
        config.gazetteer.kinds().join(", ")
    );
    let _ = writeln!(out, "state:    {}", config.state_dir.display());
    let _ = writeln!(out, "log:      {}", config.log_path.display());
    for w in &config.warnings {
        let _ = writeln!(out, "warning:  {w}");
    }
    out.push_str("ok\n");
    out
}

/// A command given something it cannot use (a query that does not parse,
/// a URL that is not one, a missing argument): exit status 2, like an
/// invalid configuration, where a failure at run time is 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Fails with a [`UsageError`].
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err(UsageError(format!($($arg)*)).into())
    };
}

/// Writes a line to stderr, ignoring failure: a message about an error must
/// not become a panic of its own when stderr is closed or full.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `newswatch once`: exit 0 unless every feed failed (or delivery failed).
pub async fn once(config: Arc<Config>) -> anyhow::Result<ExitCode> {
    let summary = crate::daemon::once(config).await?;
    for failure in &summary.failed {
        say!("error: {failure}");
    }
    say!(
        "{} feeds polled, {} failed, {} alerts raised, {} written to the log",
        summary.feeds,
        summary.failed.len(),
        summary.alerts,
        summary.delivered.written
    );
    Ok(
        if summary.feeds > 0 && summary.failed.len() == summary.feeds {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        },
    )
}

/// Options of `newswatch match`.
pub struct MatchOptions {
    pub source: Option<String>,
    /// Queries to try instead of the configured rules.
    pub rule: Vec<String>,
    pub since: Option<Duration>,
    pub json: bool,
    pub all: bool,
}

#[derive(Serialize)]
struct MatchedRule {
    rule: String,
    title: String,
    severity: Severity,
    hits: Vec<Hit>,
}

#[derive(Serialize)]
struct MatchedItem<'a> {
    title: &'a str,
    link: Option<&'a str>,
    published: Option<String>,
    feed: Option<&'a str>,
    matches: Vec<MatchedRule>,
    entities: Vec<crate::alerts::AlertEntity>,
}

/// Carets under the characters of `span` of `query`, to print below it.
fn caret_under(query: &str, span: std::ops::Range<usize>) -> String {
    format!(
        "{}{}",
        " ".repeat(query[..span.start.min(query.len())].chars().count()),
        "^".repeat(query.get(span).map_or(1, |s| s.chars().count().max(1)))
    )
}

/// A rule as `newswatch match` reports it: id, title, severity.
type RuleMeta = (String, String, Severity);

/// The rules of `newswatch match --rule …`: `query`, or `query-1`,
/// `query-2`, … for several. Every invalid query is reported, with a caret
/// under what is wrong, and warnings are printed on stderr.
fn command_line_rules(
    queries: &[String],
    gazetteer: &crate::entities::Gazetteer,
) -> anyhow::Result<(RuleSet, Vec<RuleMeta>)> {
    let ids: Vec<String> = if queries.len() == 1 {
        vec!["query".into()]
    } else {
        (1..=queries.len()).map(|i| format!("query-{i}")).collect()
    };
    let rules = rules::compile(
        ids.iter()
            .map(String::as_str)
            .zip(queries.iter().map(String::as_str)),
        gazetteer,
    )
    .map_err(|errors| {
        let reports: Vec<String> = errors
            .iter()
            .map(|e| {
                let query = &queries[ids.iter().position(|id| *id == e.rule).unwrap_or(0)];
                let caret = caret_under(query, e.error.span.clone());
                let which = if ids.len() > 1 {
                    format!(" ({})", e.rule)
                } else {
                    String::new()
                };
                format!(
                    "invalid query{which}: {}\n  {query}\n  {caret}",
                    e.error.message
                )
            })
            .collect();
        UsageError(reports.join("\n"))
    })?;
    for query in queries {
        for warning in rules::lint(query) {
            let caret = caret_under(query, warning.span);
            say!("warning: {}\n  {query}\n  {caret}", warning.message);
        }
    }
    let meta = ids
        .into_iter()
        .zip(queries)
        .map(|(id, query)| (id, query.clone(), Severity::Medium))
        .collect();
    Ok((rules, meta))
}

/// `newswatch match`: runs rules over a source without touching the state.
pub async fn match_command(config: Arc<Config>, options: MatchOptions) -> anyhow::Result<ExitCode> {
    let (rules, meta): (RuleSet, Vec<RuleMeta>) = match options.rule.as_slice() {
        [] => (
            config.rules.clone(),
            config
                .raw
                .rules
                .iter()
                .map(|r| (r.id.get_ref().clone(), r.title().to_string(), r.severity))
                .collect(),
        ),
        queries => command_line_rules(queries, &config.gazetteer)?,
    };

    let items: Vec<(Item, Option<String>)> = match (&options.source, options.since) {
        (Some(_), Some(_)) => usage!("give either a source or --since, not both"),
        (None, None) => {
            usage!("nothing to match: give a feed URL or file, - for stdin, or --since 7d")
        }
        (None, Some(since)) => {
            let store = Store::open_for_reading(&config.state_dir.join("state.sqlite"))?;
            let start = Utc::now()
                .timestamp()
                .saturating_sub(i64::try_from(since.as_secs()).unwrap_or(i64::MAX));
            store
                .items_since(start)?
                .into_iter()
                .map(|s| {
                    let item = Item {
                        key: s.key,
                        title: s.title,
                        link: s.link,
                        published: s
                            .published
                            .and_then(|p| chrono::DateTime::from_timestamp(p, 0)),
                        summary: s.summary,
                        content: s.content,
                    };
                    (item, Some(s.feed_url))
                })
                .collect()
        }
        (Some(source), None) => load_source(&config, source).await?,
    };

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let color = stdout.is_terminal();
    let mut matched_items = 0;
    // Per rule, the items it fired on.
    let mut fired_on = vec![0usize; meta.len()];
    for (item, feed) in &items {
        let document = Document::new(&item.title, &item.summary, &item.content, &config.gazetteer);
        let matches = rules.evaluate(&document);
        for m in &matches {
            fired_on[m.rule] += 1;
        }
        if matches.is_empty() && !options.all {
            continue;
        }
        if !matches.is_empty() {
            matched_items += 1;
        }
        let entities = crate::alerts::document_entities(&document, &config.gazetteer, 12);
        let matched: Vec<MatchedRule> = matches
            .into_iter()
            .map(|m| {
                let (id, title, severity) = meta[m.rule].clone();
                MatchedRule {
                    rule: id,
                    title,
                    severity,
                    hits: m.hits,
                }
            })
            .collect();
        if options.json {
            let line = MatchedItem {
                title: &item.title,
                link: item.link.as_deref(),
                published: item.published.map(crate::alerts::timestamp),
                feed: feed.as_deref(),
                matches: matched,
                entities,
            };
            writeln!(out, "{}", serde_json::to_string(&line)?)?;
            continue;
        }
        let (bold, dim, green, reset) = if color {
            ("\x1b[1m", "\x1b[2m", "\x1b[32m", "\x1b[0m")
        } else {
            ("", "", "", "")
        };
        writeln!(out, "{bold}{}{reset}", sanitize_terminal(&item.title))?;
        if let Some(link) = &item.link {
            writeln!(out, "  {dim}{}{reset}", sanitize_terminal(link))?;
        }
        if matched.is_empty() {
            writeln!(out, "  no rule fires")?;
        }
        for m in &matched {
            writeln!(
                out,
                "  {green}✔ {}{reset} ({}) — {}",
                m.rule,
                m.severity.as_str(),
                sanitize_terminal(&m.title)
            )?;
            for h in &m.hits {
                writeln!(
                    out,
                    "      {:<28} {dim}[{}]{reset} {}",
                    sanitize_terminal(&h.term),
                    h.field.name(),
                    sanitize_terminal(&h.snippet)
                )?;
            }
        }
        if !entities.is_empty() {
            let list: Vec<String> = entities
                .iter()
                .map(|e| {
                    let guess = if e.guessed { ", guessed" } else { "" };
                    format!(
                        "{} ({}{guess}) ×{}",
                        sanitize_terminal(&e.name),
                        e.kind,
                        e.count
                    )
                })
                .collect();
            writeln!(out, "  entities: {}", list.join(", "))?;
        }
        writeln!(out)?;
    }
    if !options.json {
        let noun = if items.len() == 1 { "item" } else { "items" };
        writeln!(out, "{} {noun}, {} matched", items.len(), matched_items)?;
        // How often each rule fired: a rule that fires on most items would
        // flood, one that never fires may be mistyped.
        if meta.len() > 1 && !items.is_empty() {
            let width = meta.iter().map(|(id, ..)| id.len()).max().unwrap_or(0);
            for ((id, ..), &n) in meta.iter().zip(&fired_on) {
                let share = 100.0 * n as f64 / items.len() as f64;
                writeln!(out, "  {id:<width$}  {n} ({share:.0} %)")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads items from a feed URL or file, or a plain-text article (first line
/// the headline, the rest the body) from a file or stdin.
async fn load_source(config: &Config, source: &str) -> anyhow::Result<Vec<(Item, Option<String>)>> {
    let article = |text: &str| {
        let text = text.trim_start_matches('\u{feff}');
        let (title, body) = text.split_once('\n').unwrap_or((text, ""));
        Item {
            key: "article".into(),
            title: title.trim().to_string(),
            link: None,
            published: None,
            summary: String::new(),
            content: body.trim().to_string(),
        }
    };
    if source == "-" {
        // Bounded like a fetched body: `match - </dev/zero` must not take
        // all the memory there is.
        let limit = config.raw.fetch.max_bytes;
        let mut bytes = Vec::new();
        std::io::stdin()
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .context("reading the article from stdin")?;
        if bytes.len() as u64 > limit {
            bail!("the article on stdin is larger than the {limit}-byte limit ([fetch] max_bytes)");
        }
        return Ok(vec![(article(&String::from_utf8_lossy(&bytes)), None)]);
    }
    let url = resolve_feed_url(source, &std::env::current_dir().unwrap_or_default())
        .map_err(anyhow::Error::msg)?;
    let fetcher = Fetcher::new(&config.raw.fetch)?.reading_any_file();
    let (body, charset) = match fetcher.fetch(&url, &Validators::default()).await? {
        FetchOutcome::Fetched { body, charset, .. } => (body, charset),
        FetchOutcome::NotModified { .. } => {
            bail!("{url}: server answered 304 to an unconditional request")
        }
    };
    match parse_feed_as(&body, &url, charset.as_deref()) {
        Ok(feed) => Ok(feed
            .items
            .into_iter()
            .map(|i| (i, Some(url.clone())))
            .collect()),
        Err(e) => {
            // A local text file is read as an article.
            if url.starts_with("file://")
                && let Ok(text) = std::str::from_utf8(&body)
                && !text.trim_start().starts_with('<')
                && !text.trim_start().starts_with('{')
            {
                return Ok(vec![(article(text), None)]);
            }
            Err(anyhow::anyhow!("{url}: {e}"))
        }
    }
}

#[derive(Serialize)]
struct FeedHealthRow<'a> {
    url: &'a str,
    name: Option<&'a str>,
    status: &'static str,
    last_attempt: Option<String>,
    last_success: Option<String>,
    http_status: Option<u16>,
    error: Option<&'a str>,
    consecutive_failures: u32,
    failing_since: Option<String>,
    items_seen: u64,
    items_per_day: Option<f64>,
    interval_secs: u64,
    next_due: Option<String>,
    moved_to: Option<&'a str>,
    disabled: Option<&'a str>,
}

fn ts(secs: Option<i64>) -> Option<String> {
    secs.and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(crate::alerts::timestamp)
}

/// "3m ago", "in 5m": a compact relative time.
fn relative(secs: Option<i64>, now: i64) -> String {
    let Some(t) = secs else {
        return "never".into();
    };
    let delta = t - now;
    let d = Duration::from_secs(delta.unsigned_abs());
    let text = if d.as_secs() < 60 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() < 3600 {
        format!("{}m", d.as_secs() / 60)
    } else if d.as_secs() < 86_400 {
        format!("{}h", d.as_secs() / 3600)
    } else {
        format!("{}d", d.as_secs() / 86_400)
    };
    if delta <= 0 {
        format!("{text} ago")
    } else {
        format!("in {text}")
    }
}

/// `newswatch feeds`: feed health, failing feeds first.
pub fn feeds(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let store = Store::open_for_reading(&config.state_dir.join("state.sqlite"))?;
    let states: std::collections::HashMap<String, crate::store::FeedState> = store
        .feed_states()?
        .into_iter()
        .map(|s| (s.url.clone(), s))
        .collect();
    let now = Utc::now().timestamp();
    let default_state = crate::store::FeedState::default();
    let mut rows: Vec<FeedHealthRow<'_>> = config
        .feeds
        .iter()
        .map(|feed| {
            let state = states.get(&feed.url).unwrap_or(&default_state);
            let status = state.status();
            let interval = state
                .interval_secs
                .map_or(feed.interval.as_secs(), |s| s.max(0) as u64);
            FeedHealthRow {
                url: &feed.url,
                name: feed.name.as_deref(),
                status,
                last_attempt: ts(state.last_attempt),
                last_success: ts(state.last_success),
                http_status: state.last_status,
                error: state.last_error.as_deref(),
                consecutive_failures: state.consecutive_failures,
                failing_since: ts(state.failing_since),
                items_seen: state.items_seen,
                items_per_day: state.items_per_day(now).map(|r| (r * 10.0).round() / 10.0),
                interval_secs: interval,
                next_due: state
                    .disabled
                    .is_none()
                    .then(|| ts(state.last_attempt.map(|t| t + interval as i64)))
                    .flatten(),
                moved_to: state.moved_to.as_deref(),
                disabled: state.disabled.as_deref(),
            }
        })
        .collect();
    let rank = |r: &FeedHealthRow<'_>| match r.status {
        "disabled" => 0,
        "failing" => 1,
        "new" => 2,
        _ => 3,
    };
    rows.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then(b.consecutive_failures.cmp(&a.consecutive_failures))
            .then(a.url.cmp(b.url))
    });
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json {
        for row in &rows {
            writeln!(out, "{}", serde_json::to_string(row)?)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:<9} {:>5} {:>9} {:>4} {:>7} {:>6} {:>8} {:>8}  FEED",
        "STATUS", "FAILS", "LAST OK", "HTTP", "ITEMS", "/DAY", "INTERVAL", "NEXT"
    )?;
    for row in &rows {
        let state = states.get(row.url).unwrap_or(&default_state);
        let next = state
            .last_attempt
            .filter(|_| row.disabled.is_none())
            .map(|t| t + row.interval_secs as i64);
        writeln!(
            out,
            "{:<9} {:>5} {:>9} {:>4} {:>7} {:>6} {:>8} {:>8}  {}",
            row.status,
            row.consecutive_failures,
            relative(state.last_success, now).trim_end_matches(" ago"),
            row.http_status.map_or("-".to_string(), |s| s.to_string()),
            row.items_seen,
            row.items_per_day
                .map_or("-".to_string(), |r| format!("{r:.1}")),
            humantime::format_duration(Duration::from_secs(row.interval_secs)).to_string(),
            if row.disabled.is_some() {
                "-".to_string()
            } else {
                relative(next, now)
            },
            sanitize_terminal(row.name.unwrap_or(row.url)),
        )?;
        if let Some(reason) = row.disabled {
            writeln!(out, "{:<9} disabled: {}", "", sanitize_terminal(reason))?;
        } else if let Some(error) = row.error.filter(|_| row.consecutive_failures > 0) {
            writeln!(out, "{:<9} error: {}", "", sanitize_terminal(error))?;
        }
        if let Some(to) = row.moved_to {
            writeln!(out, "{:<9} moved to: {}", "", sanitize_terminal(to))?;
        }
        if row.name.is_some() {
            writeln!(out, "{:<9} {}", "", sanitize_terminal(row.url))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The config file in use, or an error telling how to get one.
fn config_file(config: &Config) -> anyhow::Result<&std::path::Path> {
    match &config.origin {
        crate::config::Origin::File(path) => Ok(path),
        crate::config::Origin::Builtin => {
            bail!(
                "running on the built-in configuration; run `newswatch init` to get a config file to edit"
            )
        }
    }
}

/// Edits the config file at `path`: `edit` gets its text and returns the
/// new text, or `None` to leave the file alone, plus what to report.
///
/// The edit is validated as a configuration before anything is written; it
/// replaces the file atomically. It goes to the file a symlink points to,
/// keeps the file's mode and owner, and is refused for anything but a
/// writable regular file. Edits are serialized by a lock on the directory:
/// `feeds add` run twice at once must keep both feeds.
fn edit_config<T>(
    path: &std::path::Path,
    edit: impl FnOnce(&str) -> anyhow::Result<(Option<String>, T)>,
) -> anyhow::Result<T> {
    use std::os::unix::fs::MetadataExt;
    let target =
        std::fs::canonicalize(path).with_context(|| format!("cannot edit {}", path.display()))?;
    let meta =
        std::fs::metadata(&target).with_context(|| format!("cannot edit {}", target.display()))?;
    if !meta.is_file() {
        bail!(
            "{} is not a regular file; edit the configuration by hand",
            target.display()
        );
    }
    if meta.permissions().readonly() {
        bail!("{} is read-only; nothing written", target.display());
    }
    let dir = target.parent().unwrap_or(std::path::Path::new("/"));
    let lock = std::fs::File::open(dir)
        .and_then(|d| d.lock().map(|()| d))
        .with_context(|| format!("cannot lock {} for the edit", dir.display()))?;
    // Read under the lock: another edit may have finished meanwhile.
    let text = crate::config::read_text_file(&target)
        .with_context(|| format!("cannot read {}", target.display()))?;
    let (edited, report) = edit(&text)?;
    let Some(edited) = edited else {
        return Ok(report);
    };
    crate::config::Config::from_str(&edited, crate::config::Origin::File(target.clone())).map_err(
        |e| {
            UsageError(format!(
                "the edited configuration would not be valid; nothing written:\n{e}"
            ))
        },
    )?;
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(edited.as_bytes())?;
        file.set_permissions(meta.permissions())?;
        // Only root may give a file away; a user editing their own file
        // already owns the new one.
        if std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid())).is_err()
            && owner_differs(&file, &meta)
        {
            return Err(std::io::Error::other(
                "cannot give the new file the old one's owner",
            ));
        }
        file.sync_all()?;
        std::fs::rename(&tmp, &target)?;
        // The rename itself survives a crash once the directory is synced.
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", target.display()));
    }
    drop(lock);
    Ok(report)
}

/// Whether `file` has another owner than the file `meta` describes.
fn owner_differs(file: &std::fs::File, meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    file.metadata()
        .map_or(true, |m| m.uid() != meta.uid() || m.gid() != meta.gid())
}

/// `newswatch feeds add URL`.
pub fn feeds_add(
    config: &Config,
    url: String,
    name: Option<String>,
    tags: Vec<String>,
) -> anyhow::Result<ExitCode> {
    let path = config_file(config)?;
    let report = edit_config(path, |text| {
        let (edited, report) =
            crate::config_edit::add_feeds(text, &[crate::config_edit::NewFeed { url, name, tags }])
                .map_err(|e| UsageError(e.to_string()))?;
        Ok(((!report.added.is_empty()).then_some(edited), report))
    })?;
    let mut out = std::io::stdout().lock();
    for url in &report.skipped {
        writeln!(out, "already configured: {}", sanitize_terminal(url))?;
    }
    for url in &report.added {
        writeln!(
            out,
            "added {} to {}",
            sanitize_terminal(url),
            path.display()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `newswatch feeds remove URL`.
pub fn feeds_remove(config: &Config, url: &str) -> anyhow::Result<ExitCode> {
    let path = config_file(config)?;
    let removed = edit_config(path, |text| {
        let (edited, removed) =
            crate::config_edit::remove_feed(text, url).map_err(|e| UsageError(e.to_string()))?;
        Ok((removed.then_some(edited), removed))
    })?;
    if !removed {
        bail!("{} is not in {}", sanitize_terminal(url), path.display());
    }
    writeln!(
        std::io::stdout(),
        "removed {} from {}",
        sanitize_terminal(url),
        path.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `newswatch import FILE.opml`: adds the web feeds of an OPML export.
pub fn import(config: &Config, file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let path = config_file(config)?;
    let bytes = crate::config::read_capped(file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let feeds = crate::opml::parse_opml(&bytes)
        .with_context(|| format!("{} is not usable OPML", file.display()))?;
    let (web, local): (Vec<_>, Vec<_>) = feeds
        .into_iter()
        .partition(|f| crate::opml::is_web_url(&f.url));
    for feed in &local {
        say!(
            "skipped (not an http(s) URL): {}",
            sanitize_terminal(&feed.url)
        );
    }
    let new: Vec<crate::config_edit::NewFeed> = web
        .into_iter()
        .map(|f| crate::config_edit::NewFeed {
            url: f.url,
            name: f.title,
            tags: f
                .categories
                .into_iter()
                .take(1)
                .map(|c| c.to_lowercase())
                .collect(),
        })
        .collect();
    let report = edit_config(path, |text| {
        let (edited, report) =
            crate::config_edit::add_feeds(text, &new).map_err(|e| UsageError(e.to_string()))?;
        Ok(((!report.added.is_empty()).then_some(edited), report))
    })?;
    writeln!(
        std::io::stdout(),
        "imported {} feeds into {} ({} already configured)",
        report.added.len(),
        path.display(),
        report.skipped.len()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `newswatch export [FILE]`: the configured feeds as OPML.
pub fn export(config: &Config, file: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let feeds: Vec<crate::opml::OpmlFeed> = config
        .feeds
        .iter()
        .map(|f| crate::opml::OpmlFeed {
            url: f.url.clone(),
            title: f.name.clone(),
            categories: f.tags.iter().take(1).cloned().collect(),
        })
        .collect();
    let opml = crate::opml::write_opml("newswatch feeds", &feeds);
    match file {
        Some(path) => std::fs::write(path, opml)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout().write_all(opml.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `newswatch stories`: recent stories, most sources first.
pub fn stories(
    config: &Config,
    json: bool,
    since: Option<Duration>,
    limit: usize,
) -> anyhow::Result<ExitCode> {
    let store = Store::open_for_reading(&config.state_dir.join("state.sqlite"))?;
    let window = since.unwrap_or(config.raw.stories.window.0);
    let now = Utc::now().timestamp();
    let rows = store.stories_since(
        now.saturating_sub(i64::try_from(window.as_secs()).unwrap_or(i64::MAX)),
        limit,
    )?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json {
        for row in &rows {
            writeln!(out, "{}", serde_json::to_string(row)?)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "{:>7}  {:>9}  STORY", "SOURCES", "LAST SEEN")?;
    for row in &rows {
        writeln!(
            out,
            "{:>7}  {:>9}  {}",
            row.sources,
            relative(Some(row.last_seen), now),
            sanitize_terminal(&row.title)
        )?;
        for item in row.items.iter().take(10) {
            let feed = config
                .feeds
                .iter()
                .find(|f| f.url == item.feed_url)
                .map_or(item.feed_url.as_str(), |f| f.display_name());
            writeln!(
                out,
                "{:>20}- {}: {}",
                "",
                sanitize_terminal(feed),
                sanitize_terminal(&item.title)
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `newswatch feeds enable URL`.
pub fn feeds_enable(config: &Config, url: &str) -> anyhow::Result<ExitCode> {
    let url = resolve_feed_url(url, &std::env::current_dir().unwrap_or_default())
        .map_err(anyhow::Error::msg)?;
    let store = Store::open(&config.state_dir.join("state.sqlite"))?;
    if store.enable(&url)? {
        writeln!(std::io::stdout(), "{url} will be polled again")?;
        Ok(ExitCode::SUCCESS)
    } else {
        bail!("{url} is not in the state")
    }
}

/// Options of `newswatch tail`.
pub struct TailOptions {
    pub follow: bool,
    pub rules: Vec<String>,
    pub severity: Option<Severity>,
    pub since: Option<Duration>,
    pub json: bool,
    pub lines: Option<usize>,
}

struct TailFilter {
    rules: HashSet<String>,
    severity: Option<Severity>,
    since: Option<String>,
}

impl TailFilter {
    fn keep(&self, alert: &Alert) -> bool {
        (self.rules.is_empty() || self.rules.contains(&alert.rule))
            && self.severity.is_none_or(|s| alert.severity >= s)
            && self.since.as_ref().is_none_or(|since| alert.ts >= *since)
    }
}

/// `newswatch tail`: prints the alert log, optionally following it.
pub fn tail(config: &Config, options: TailOptions) -> anyhow::Result<ExitCode> {
    use std::os::unix::fs::MetadataExt;
    let path = &config.log_path;
    let filter = TailFilter {
        rules: options.rules.iter().cloned().collect(),
        severity: options.severity,
        since: options.since.map(|d| {
            crate::alerts::timestamp(
                chrono::Duration::from_std(d)
                    .ok()
                    .and_then(|d| Utc::now().checked_sub_signed(d))
                    .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC),
            )
        }),
    };
    let stdout = std::io::stdout();
    let color = stdout.is_terminal() && !options.json;
    let mut out = stdout.lock();
    let emit = |line: &str, out: &mut std::io::StdoutLock<'_>| -> std::io::Result<()> {
        let Ok(alert) = serde_json::from_str::<Alert>(line) else {
            return Ok(());
        };
        if !filter.keep(&alert) {
            return Ok(());
        }
        if options.json {
            writeln!(out, "{line}")?;
        } else {
            writeln!(out, "{}", pretty_line(&alert, color))?;
        }
        out.flush()
    };

    let open = || std::fs::File::open(path);
    let mut file = match open() {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && options.follow => None,
        // Before the first alert there is no log: nothing to show, no error.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            say!("no alerts yet: {} does not exist", path.display());
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read the alert log {}", path.display()));
        }
    };
    let mut partial = PartialLine::default();
    if let Some(f) = file.as_mut() {
        // A device never ends (/dev/zero), and reading a pipe would take the
        // lines from whoever reads it.
        if !f.metadata()?.is_file() {
            bail!(
                "the alert log {} is not a regular file (a pipe or a device): read it where its lines go",
                path.display()
            );
        }
        // The history is streamed, and with -n only the last lines are kept:
        // a log that is never rotated grows for as long as the daemon runs.
        match options.lines {
            None => read_new_lines(f, &mut partial, |l| emit(l, &mut out))?,
            Some(n) => {
                let mut last: std::collections::VecDeque<String> =
                    std::collections::VecDeque::new();
                read_new_lines(f, &mut partial, |l| {
                    if n > 0 {
                        if last.len() == n {
                            last.pop_front();
                        }
                        last.push_back(l.to_string());
                    }
                    Ok(())
                })?;
                for l in &last {
                    emit(l, &mut out)?;
                }
            }
        }
    }
    if !options.follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut position = file.as_mut().map_or(Ok(0), |f| f.stream_position())?;
    let mut inode = file
        .as_ref()
        .and_then(|f| f.metadata().ok())
        .map(|m| m.ino());
    loop {
        std::thread::sleep(Duration::from_millis(250));
        // Rotation: the path now names another file (or the file shrank).
        let current = std::fs::metadata(path).ok();
        let rotated = match (&current, inode) {
            (Some(m), Some(ino)) => m.ino() != ino || m.len() < position,
            (Some(_), None) => true,
            _ => false,
        };
        if rotated {
            // Drain the rest of the old file first.
            if let Some(f) = file.as_mut() {
                read_new_lines(f, &mut partial, |l| emit(l, &mut out))?;
            }
            file = open().ok();
            inode = file
                .as_ref()
                .and_then(|f| f.metadata().ok())
                .map(|m| m.ino());
            position = 0;
            partial = PartialLine::default();
        }
        if let Some(f) = file.as_mut() {
            f.seek(SeekFrom::Start(position))?;
            read_new_lines(f, &mut partial, |l| emit(l, &mut out))?;
            position = f.stream_position()?;
        }
    }
}

/// Longest line of the alert log `tail` keeps: an alert is a few KiB, so a
/// longer line is not one (a damaged file), and is skipped.
const MAX_LOG_LINE: usize = 1 << 20;

/// The last line of the alert log read so far, while its newline has not
/// been written yet.
#[derive(Debug, Default)]
struct PartialLine {
    bytes: Vec<u8>,
    /// Longer than [`MAX_LOG_LINE`]: skipped up to its newline.
    too_long: bool,
}

/// Reads `file` from where it stands to its end and gives `emit` each
/// complete line (without its newline), continuing `partial` and leaving
/// in it what follows the last newline. Lines longer than [`MAX_LOG_LINE`]
/// are skipped without being held in memory, however the file grows.
fn read_new_lines(
    file: &mut std::fs::File,
    partial: &mut PartialLine,
    mut emit: impl FnMut(&str) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut reader = std::io::BufReader::new(file);
    loop {
        // At most one byte past the cap: `bytes` never holds more.
        let room = (MAX_LOG_LINE + 1 - partial.bytes.len()) as u64;
        let n = reader
            .by_ref()
            .take(room)
            .read_until(b'\n', &mut partial.bytes)?;
        if n == 0 {
            return Ok(());
        }
        if partial.bytes.ends_with(b"\n") {
            if !partial.too_long {
                emit(String::from_utf8_lossy(&partial.bytes).trim_end())?;
            }
            partial.bytes.clear();
            partial.too_long = false;
        } else if partial.bytes.len() > MAX_LOG_LINE {
            partial.bytes.clear();
            partial.too_long = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Reads what was appended to `path` since `at`, as `tail -f` does.
    fn follow(path: &Path, partial: &mut PartialLine, at: &mut u64) -> Vec<String> {
        let mut file = std::fs::File::open(path).unwrap();
        file.seek(SeekFrom::Start(*at)).unwrap();
        let mut lines = Vec::new();
        read_new_lines(&mut file, partial, |l| {
            lines.push(l.to_string());
            Ok(())
        })
        .unwrap();
        *at = file.stream_position().unwrap();
        lines
    }

    fn append(path: &Path, bytes: &[u8]) {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .unwrap();
        file.write_all(bytes).unwrap();
    }

    #[test]
    fn followed_lines_arrive_whole_however_they_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        let (mut partial, mut at) = (PartialLine::default(), 0);
        // A line cut inside a two-byte character.
        append(&path, b"{\"a\":1}\n{\"b\":\"\xc3");
        assert_eq!(follow(&path, &mut partial, &mut at), ["{\"a\":1}"]);
        assert_eq!(follow(&path, &mut partial, &mut at), Vec::<String>::new());
        append(&path, b"\xa9\"}\n{\"c\":3}\n");
        assert_eq!(
            follow(&path, &mut partial, &mut at),
            ["{\"b\":\"\u{e9}\"}", "{\"c\":3}"]
        );
    }

    #[test]
    fn an_overlong_line_is_skipped_as_it_grows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        let (mut partial, mut at) = (PartialLine::default(), 0);
        append(&path, b"first\n");
        append(&path, &vec![b'x'; MAX_LOG_LINE / 2]);
        assert_eq!(follow(&path, &mut partial, &mut at), ["first"]);
        // Three times the cap, in pieces: never held whole.
        for _ in 0..6 {
            append(&path, &vec![b'x'; MAX_LOG_LINE / 2]);
            assert!(follow(&path, &mut partial, &mut at).is_empty());
            assert!(partial.bytes.len() <= MAX_LOG_LINE);
        }
        append(&path, b"xx\nlast\npart");
        assert_eq!(follow(&path, &mut partial, &mut at), ["last"]);
        assert_eq!(partial.bytes, b"part");
        assert!(!partial.too_long);
    }
}
