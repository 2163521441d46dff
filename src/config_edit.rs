//! Editing the user's configuration text in place: adding and removing
//! `[[feeds]]` tables (for `feeds add`, `feeds remove` and OPML import).
//!
//! This module owns the text transformation only, done with
//! [`toml_edit::DocumentMut`] so that everything it does not touch — comments,
//! blank lines, key order, quoting, other tables — comes out byte for byte as
//! it went in. It never reads or writes files, never validates the result
//! against the schema (run [`crate::config::Config::from_str`] on the output
//! for that), and never resolves or fetches URLs.
//!
//! Feeds are matched by URL: two URLs are the same feed when they are equal
//! after trimming surrounding whitespace, putting an http(s) URL in the form
//! the configuration checks duplicates in (scheme and host in lowercase, no
//! default port), and dropping one trailing `/`. Relative paths are not
//! resolved here.

use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, RawString, Table, value};

/// A feed to add to the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFeed {
    /// The feed's address: an `http(s)://` or `file://` URL or a path.
    pub url: String,
    /// Written as `name` when present and not blank.
    pub name: Option<String>,
    /// Written as `tags` when non-empty (blank tags are left out).
    pub tags: Vec<String>,
}

/// What [`add_feeds`] did, by URL, in the order the feeds were given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddReport {
    /// Feeds appended to the configuration.
    pub added: Vec<String>,
    /// Feeds already in the configuration (or given twice), left alone.
    pub skipped: Vec<String>,
}

/// Why the configuration text could not be edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The text is not TOML; the message locates the problem (line, column).
    #[error("the configuration is not valid TOML: {0}")]
    InvalidToml(String),
    /// `feeds` is defined, but not as `[[feeds]]` tables.
    #[error(
        "`feeds` in the configuration is {found}, not an array of tables; write each feed as a [[feeds]] table"
    )]
    FeedsNotTables {
        /// What `feeds` is instead, e.g. "array" or "table".
        found: String,
    },
    /// A feed to add has an empty URL.
    #[error("cannot add a feed with an empty url")]
    EmptyUrl,
}

/// Appends a `[[feeds]]` table (`url`, then `name`, then `tags`) for each feed
/// whose URL is not in the configuration yet, after the last existing
/// `[[feeds]]` table (or at the end of the file when there is none). Everything
/// else in the text is kept as it was.
///
/// Returns the new text and which URLs were added or skipped as already
/// present (see the module documentation for how URLs are compared); a feed
/// listed twice in `feeds` is added once. Works on empty text.
pub fn add_feeds(config_text: &str, feeds: &[NewFeed]) -> Result<(String, AddReport), EditError> {
    let (style, body) = TextStyle::of(config_text);
    let mut doc = parse(&body)?;
    let mut report = AddReport::default();
    if feeds.is_empty() {
        return Ok((config_text.to_string(), report));
    }
    if feeds.iter().any(|f| f.url.trim().is_empty()) {
        return Err(EditError::EmptyUrl);
    }
    let root = doc.as_table_mut();
    if !root.contains_key("feeds") {
        root.insert("feeds", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    let tables = feeds_tables(&mut doc)?;
    // A set: an OPML export can hold tens of thousands of feeds.
    let mut known: std::collections::HashSet<String> =
        tables.iter().filter_map(table_url).map(url_key).collect();
    for feed in feeds {
        let url = feed.url.trim();
        if !known.insert(url_key(url)) {
            report.skipped.push(url.to_string());
            continue;
        }
        tables.push(feed_table(url, feed));
        report.added.push(url.to_string());
    }
    if report.added.is_empty() {
        return Ok((config_text.to_string(), report));
    }
    Ok((style.apply(doc.to_string()), report))
}

/// Removes every `[[feeds]]` table whose `url` is `url` (compared as described
/// in the module documentation); returns the new text and whether anything was
/// removed. When nothing matches, the text is returned unchanged.
///
/// Comment lines directly above a removed table's header (no blank line in
/// between) describe it and go with it, as do comments inside it. Comments
/// above it that are separated from it by a blank line — a section heading,
/// say — stay where they were, and so does everything else in the file.
pub fn remove_feed(config_text: &str, url: &str) -> Result<(String, bool), EditError> {
    let (style, body) = TextStyle::of(config_text);
    let mut doc = parse(&body)?;
    if !doc.as_table().contains_key("feeds") {
        return Ok((config_text.to_string(), false));
    }
    let wanted = url_key(url);
    let mut removed_any = false;
    loop {
        let tables = feeds_tables(&mut doc)?;
        let Some(index) = tables
            .iter()
            .position(|t| table_url(t).is_some_and(|u| url_key(u) == wanted))
        else {
            break;
        };
        let removed = tables.remove(index);
        removed_any = true;
        let kept = kept_prefix(removed.decor().prefix());
        if !kept.is_empty() {
            move_to_next_table(&mut doc, removed.position(), &kept);
        }
    }
    if !removed_any {
        return Ok((config_text.to_string(), false));
    }
    // An array of tables left empty is not written at all, which is what we want.
    Ok((style.apply(doc.to_string()), true))
}

/// What an edit keeps of how the file was written, besides its text: a
/// byte order mark, and CRLF line ends (when every line has one; a file
/// that mixes them comes out with LF).
struct TextStyle {
    bom: bool,
    crlf: bool,
}

impl TextStyle {
    /// The style of `text`, and its text as the TOML editor wants it.
    fn of(text: &str) -> (TextStyle, std::borrow::Cow<'_, str>) {
        let bom = text.starts_with('\u{feff}');
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines = text.matches('\n').count();
        let crlf = lines > 0 && text.matches("\r\n").count() == lines;
        let body = if crlf {
            text.replace("\r\n", "\n").into()
        } else {
            text.into()
        };
        (TextStyle { bom, crlf }, body)
    }

    /// `text` (LF line ends) written in this style.
    fn apply(&self, text: String) -> String {
        let text = if self.crlf {
            text.replace('\n', "\r\n")
        } else {
            text
        };
        if self.bom {
            format!("\u{feff}{text}")
        } else {
            text
        }
    }
}

fn parse(config_text: &str) -> Result<DocumentMut, EditError> {
    config_text
        .parse::<DocumentMut>()
        .map_err(|e| EditError::InvalidToml(e.to_string().trim_end().to_string()))
}

/// The `[[feeds]]` array of tables; `feeds` must exist.
fn feeds_tables(doc: &mut DocumentMut) -> Result<&mut ArrayOfTables, EditError> {
    match doc.as_table_mut().get_mut("feeds") {
        Some(Item::ArrayOfTables(tables)) => Ok(tables),
        Some(other) => Err(EditError::FeedsNotTables {
            found: other.type_name().to_string(),
        }),
        None => Err(EditError::FeedsNotTables {
            found: "missing".to_string(),
        }),
    }
}

fn table_url(table: &Table) -> Option<&str> {
    table.get("url").and_then(Item::as_str)
}

/// The form URLs are compared in: trimmed, an http(s) URL in the form the
/// configuration checks for duplicates in (scheme and host in lowercase, no
/// default port), without one trailing `/`.
fn url_key(url: &str) -> String {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let url = if lower.starts_with("http://") || lower.starts_with("https://") {
        reqwest::Url::parse(url).map_or_else(|_| url.to_string(), String::from)
    } else {
        url.to_string()
    };
    match url.strip_suffix('/') {
        Some(stripped) => stripped.to_string(),
        None => url,
    }
}

fn feed_table(url: &str, feed: &NewFeed) -> Table {
    let mut table = Table::new();
    table.insert("url", value(url));
    if let Some(name) = feed
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        table.insert("name", value(name));
    }
    let tags: Array = feed
        .tags
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .collect();
    if !tags.is_empty() {
        table.insert("tags", value(tags));
    }
    table
}

/// The part of a removed table's leading whitespace and comments that belongs
/// to what comes before it: everything above the last blank line, when it
/// holds a comment, without trailing blank lines. Empty when nothing is worth
/// keeping.
fn kept_prefix(prefix: Option<&RawString>) -> String {
    let Some(prefix) = prefix.and_then(RawString::as_str) else {
        return String::new();
    };
    let lines: Vec<&str> = prefix.split_inclusive('\n').collect();
    let Some(last_blank) = lines.iter().rposition(|l| l.trim().is_empty()) else {
        return String::new();
    };
    let mut kept = &lines[..last_blank];
    while let Some((last, rest)) = kept.split_last()
        && last.trim().is_empty()
    {
        kept = rest;
    }
    if !kept.iter().any(|l| l.trim_start().starts_with('#')) {
        return String::new();
    }
    kept.concat()
}

/// Puts `kept` in front of whatever follows position `after` in the document:
/// the next table's leading decoration, else the document's trailing text.
fn move_to_next_table(doc: &mut DocumentMut, after: Option<isize>, kept: &str) {
    // Keep a blank line between the kept comments and what follows them.
    let join = |next: &str| {
        let separator = if next.starts_with('\n') || next.starts_with("\r\n") {
            ""
        } else if kept.ends_with("\r\n") {
            "\r\n"
        } else {
            "\n"
        };
        format!("{kept}{separator}{next}")
    };
    let next = after.and_then(|after| next_position(doc.as_table(), after));
    if let Some(position) = next
        && let Some(table) = table_at(doc.as_table_mut(), position)
    {
        let existing = table
            .decor()
            .prefix()
            .and_then(RawString::as_str)
            .unwrap_or("\n")
            .to_string();
        table.decor_mut().set_prefix(join(&existing));
        return;
    }
    let trailing = doc.trailing().as_str().unwrap_or("").to_string();
    let joined = if trailing.is_empty() {
        kept.to_string()
    } else {
        join(&trailing)
    };
    doc.set_trailing(joined);
}

/// Tables written with their own header (not implicit parents, not dotted).
fn is_header_table(table: &Table) -> bool {
    !table.is_implicit() && !table.is_dotted()
}

/// The smallest document position of a header table after `after`.
fn next_position(root: &Table, after: isize) -> Option<isize> {
    let mut best: Option<isize> = None;
    let mut stack = vec![root];
    while let Some(table) = stack.pop() {
        if is_header_table(table)
            && let Some(position) = table.position()
            && position > after
            && best.is_none_or(|b| position < b)
        {
            best = Some(position);
        }
        for (_, item) in table.iter() {
            match item {
                Item::Table(child) => stack.push(child),
                Item::ArrayOfTables(children) => stack.extend(children.iter()),
                _ => {}
            }
        }
    }
    best
}

/// The header table at document position `position`.
fn table_at(root: &mut Table, position: isize) -> Option<&mut Table> {
    let mut stack = vec![root];
    while let Some(table) = stack.pop() {
        if is_header_table(table) && table.position() == Some(position) {
            return Some(table);
        }
        for (_, item) in table.iter_mut() {
            match item {
                Item::Table(child) => stack.push(child),
                Item::ArrayOfTables(children) => stack.extend(children.iter_mut()),
                _ => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;

    const CONFIG: &str = r#"# newswatch — my configuration.
# Edited by hand; keep these comments.

[defaults]
interval = "10m"   # poll every ten minutes

# --- World -------------------------------------------------------------------

# The BBC: reliable, fast.
[[feeds]]
url = "https://world.example.org/rss.xml"
name = "Example World"
tags = ["world"]

[[feeds]]   # no name on purpose
url = 'https://wire.example.com/feed/'

# --- EU ----------------------------------------------------------------------

[[feeds]]
url = "https://eu.example.org/rss"
tags = [ "eu",   "politics" ]   # odd spacing, kept

# --- Rules -------------------------------------------------------------------

[[rules]]
id = "troop-deployment"
query = 'troops NEAR deploy*'

# end of file
"#;

    fn feed(url: &str, name: Option<&str>, tags: &[&str]) -> NewFeed {
        NewFeed {
            url: url.into(),
            name: name.map(Into::into),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn urls(text: &str) -> Vec<String> {
        let raw: RawConfig = toml::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        raw.feeds.iter().map(|f| f.url.get_ref().clone()).collect()
    }

    #[test]
    fn add_to_empty_text() {
        let (text, report) = add_feeds(
            "",
            &[
                feed(
                    "https://a.example.org/rss",
                    Some("A & \"B\""),
                    &["world", "eu"],
                ),
                feed("https://b.example.org/rss", None, &[]),
            ],
        )
        .unwrap();
        assert_eq!(
            text,
            "[[feeds]]\nurl = \"https://a.example.org/rss\"\nname = 'A & \"B\"'\n\
             tags = [\"world\", \"eu\"]\n\n[[feeds]]\nurl = \"https://b.example.org/rss\"\n"
        );
        assert_eq!(report.added.len(), 2);
        assert!(report.skipped.is_empty());
        let raw: RawConfig = toml::from_str(&text).unwrap();
        assert_eq!(raw.feeds[0].name.as_deref(), Some("A & \"B\""));
        assert_eq!(raw.feeds[0].tags, ["world", "eu"]);
        assert_eq!(raw.feeds[1].name, None);
    }

    #[test]
    fn add_to_file_without_feeds() {
        let config = "# mine\n[defaults]\ninterval = \"5m\" # five\n";
        let (text, _) = add_feeds(config, &[feed("/tmp/local.xml", None, &[])]).unwrap();
        assert_eq!(
            text,
            "# mine\n[defaults]\ninterval = \"5m\" # five\n\n[[feeds]]\nurl = \"/tmp/local.xml\"\n"
        );
        assert_eq!(urls(&text), ["/tmp/local.xml"]);
    }

    #[test]
    fn add_keeps_comments_and_appends_after_existing_feeds() {
        let (text, report) = add_feeds(
            CONFIG,
            &[feed(
                "https://new.example.net/atom",
                Some("New — Ünïcödé"),
                &["tech"],
            )],
        )
        .unwrap();
        assert_eq!(report.added, ["https://new.example.net/atom"]);
        let expected = CONFIG.replace(
            "\n# --- Rules",
            "\n[[feeds]]\nurl = \"https://new.example.net/atom\"\nname = \"New — Ünïcödé\"\n\
             tags = [\"tech\"]\n\n# --- Rules",
        );
        assert_eq!(text, expected);
        assert_eq!(
            urls(&text),
            [
                "https://world.example.org/rss.xml",
                "https://wire.example.com/feed/",
                "https://eu.example.org/rss",
                "https://new.example.net/atom",
            ]
        );
    }

    #[test]
    fn new_feeds_follow_the_last_feed_even_when_interleaved() {
        let config = "[[feeds]]\nurl = \"a\"\n\n[[rules]]\nid = \"r\"\nquery = \"x\"\n\n\
                      [[feeds]]\nurl = \"b\"\n\n[notify]\ndesktop = false\n";
        let (text, _) = add_feeds(config, &[feed("c", None, &[])]).unwrap();
        assert_eq!(
            text,
            config.replace("url = \"b\"\n", "url = \"b\"\n\n[[feeds]]\nurl = \"c\"\n")
        );
    }

    #[test]
    fn duplicates_are_skipped() {
        let (text, report) = add_feeds(
            CONFIG,
            &[
                feed("https://world.example.org/rss.xml", Some("Again"), &[]),
                feed("https://wire.example.com/feed", None, &[]),
                feed(" https://eu.example.org/rss/ ", None, &[]),
                feed("https://fresh.example.org/", None, &[]),
                feed("https://fresh.example.org", None, &[]),
            ],
        )
        .unwrap();
        assert_eq!(report.added, ["https://fresh.example.org/"]);
        assert_eq!(
            report.skipped,
            [
                "https://world.example.org/rss.xml",
                "https://wire.example.com/feed",
                "https://eu.example.org/rss/",
                "https://fresh.example.org",
            ]
        );
        assert_eq!(urls(&text).len(), 4);

        let (same, report) =
            add_feeds(CONFIG, &[feed("https://eu.example.org/rss", None, &[])]).unwrap();
        assert_eq!(same, CONFIG);
        assert!(report.added.is_empty());
    }

    #[test]
    fn urls_are_compared_as_the_configuration_compares_them() {
        let config = "[[feeds]]\nurl = \"http://127.0.0.1:80/z.xml\"\n";
        let (_, report) = add_feeds(config, &[feed("HTTP://127.0.0.1/z.xml", None, &[])]).unwrap();
        assert_eq!(report.skipped, ["HTTP://127.0.0.1/z.xml"]);
        let (text, removed) = remove_feed(config, "http://127.0.0.1/z.xml").unwrap();
        assert!(removed && urls(&text).is_empty(), "{text}");
    }

    #[test]
    fn crlf_and_a_byte_order_mark_are_kept() {
        let config = "\u{feff}# mine\r\n[defaults]\r\ninterval = \"5m\"\r\n";
        let (added, _) = add_feeds(config, &[feed("https://a.example.org/", None, &[])]).unwrap();
        assert!(added.starts_with("\u{feff}# mine\r\n"), "{added:?}");
        assert_eq!(
            added.matches('\n').count(),
            added.matches("\r\n").count(),
            "{added:?}"
        );
        let (back, removed) = remove_feed(&added, "https://a.example.org/").unwrap();
        assert!(removed);
        assert_eq!(back, config);
    }

    #[test]
    fn empty_url_is_refused() {
        assert_eq!(
            add_feeds(CONFIG, &[feed("  ", None, &[])]),
            Err(EditError::EmptyUrl)
        );
    }

    #[test]
    fn remove_keeps_everything_else() {
        let (text, removed) = remove_feed(CONFIG, "https://wire.example.com/feed").unwrap();
        assert!(removed);
        let expected = CONFIG.replace(
            "[[feeds]]   # no name on purpose\nurl = 'https://wire.example.com/feed/'\n\n",
            "",
        );
        assert_eq!(text, expected);
        assert_eq!(urls(&text).len(), 2);
    }

    #[test]
    fn remove_takes_its_own_comment_and_keeps_the_section_heading() {
        let (text, removed) = remove_feed(CONFIG, "https://world.example.org/rss.xml").unwrap();
        assert!(removed);
        let expected = CONFIG.replace(
            "# The BBC: reliable, fast.\n[[feeds]]\nurl = \"https://world.example.org/rss.xml\"\n\
             name = \"Example World\"\ntags = [\"world\"]\n\n",
            "",
        );
        assert_eq!(text, expected);
        assert!(text.contains("# --- World ---"), "{text}");
        assert!(text.contains("# newswatch — my configuration."));
        assert!(text.contains("# --- EU ---"));
        assert!(text.contains("# end of file"));

        // The last feed: its section heading stays, before the next section.
        let (text, removed) = remove_feed(CONFIG, "https://eu.example.org/rss").unwrap();
        assert!(removed);
        let expected = CONFIG.replace(
            "[[feeds]]\nurl = \"https://eu.example.org/rss\"\n\
             tags = [ \"eu\",   \"politics\" ]   # odd spacing, kept\n\n",
            "",
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn remove_the_very_last_table() {
        let config =
            "[[feeds]]\nurl = \"a\"\n\n# the b section\n\n[[feeds]]\nurl = \"b\"\n# trailing\n";
        let (text, removed) = remove_feed(config, "b/").unwrap();
        assert!(removed);
        assert_eq!(
            text,
            "[[feeds]]\nurl = \"a\"\n\n# the b section\n\n# trailing\n"
        );

        let (text, removed) = remove_feed("[[feeds]]\nurl = \"only\"\n", "only").unwrap();
        assert!(removed);
        assert_eq!(text, "");
        let raw: RawConfig = toml::from_str(&text).unwrap();
        assert!(raw.feeds.is_empty());
    }

    #[test]
    fn remove_missing_is_a_no_op() {
        assert_eq!(
            remove_feed(CONFIG, "https://nowhere.example.org/").unwrap(),
            (CONFIG.to_string(), false)
        );
        assert_eq!(
            remove_feed("[defaults]\n", "x").unwrap(),
            ("[defaults]\n".to_string(), false)
        );
        assert_eq!(remove_feed("", "x").unwrap(), (String::new(), false));
    }

    #[test]
    fn add_then_remove_restores_the_text() {
        let (added, _) = add_feeds(
            CONFIG,
            &[feed("https://tmp.example.org/", Some("T"), &["x"])],
        )
        .unwrap();
        let (back, removed) = remove_feed(&added, "https://tmp.example.org").unwrap();
        assert!(removed);
        assert_eq!(back, CONFIG);
    }

    #[test]
    fn invalid_toml_is_located() {
        let error = add_feeds("[defaults]\ninterval = \n", &[]).unwrap_err();
        let EditError::InvalidToml(message) = &error else {
            panic!("{error:?}");
        };
        assert!(message.contains("line 2"), "{message}");
        assert!(error.to_string().contains("not valid TOML"), "{error}");
        assert!(matches!(
            remove_feed("[[feeds]\nurl = 1", "x"),
            Err(EditError::InvalidToml(m)) if m.contains("line 1")
        ));
    }

    #[test]
    fn feeds_must_be_an_array_of_tables() {
        let inline = "feeds = [{ url = \"a\" }]\n";
        let error = add_feeds(inline, &[feed("b", None, &[])]).unwrap_err();
        assert_eq!(
            error,
            EditError::FeedsNotTables {
                found: "array".into()
            }
        );
        assert!(error.to_string().contains("[[feeds]]"));
        assert!(matches!(
            remove_feed("[feeds]\nurl = \"a\"\n", "a"),
            Err(EditError::FeedsNotTables { found }) if found == "table"
        ));
    }
}
