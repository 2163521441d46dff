//! OPML import and export: the feed lists that feed readers (Feedly,
//! Inoreader, Miniflux, NetNewsWire, Thunderbird, …) exchange.
//!
//! This module owns reading an OPML 1.0/2.0 document into a flat list of
//! [`OpmlFeed`]s (with the folders they sat in) and writing such a list back
//! out as OPML 2.0. It works on bytes and strings only: it never reads or
//! writes files, never touches the network, never fetches the feeds it lists,
//! and never edits the configuration (see [`crate::config_edit`] for that).
//!
//! Reading is deliberately tolerant of what real exports contain — missing
//! `type` attributes, `type="atom"`, `xmlurl` spelled in any case, duplicate
//! attributes, raw `&` in URLs, HTML entities such as `&nbsp;` in titles — and
//! strict about the document's structure: malformed or truncated XML is an
//! error located at a line and column. The parser is an iterative event loop
//! (no recursion), so hostile nesting cannot exhaust the stack; categories
//! deeper than [`MAX_CATEGORY_DEPTH`] are dropped while their feeds are still
//! read. Custom DTD entities are never expanded.

use std::collections::HashSet;

use quick_xml::XmlVersion;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::reader::Reader;
use quick_xml::writer::Writer;

/// How many enclosing category outlines are recorded per feed; outlines nested
/// deeper are still read, but their names are not added to `categories`.
pub const MAX_CATEGORY_DEPTH: usize = 64;

/// One feed listed in an OPML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpmlFeed {
    /// The feed's address, as written in `xmlUrl` (surrounding whitespace trimmed).
    pub url: String,
    /// The display name (`text`, else `title`); `None` when absent, blank, or
    /// just the URL repeated.
    pub title: Option<String>,
    /// The names of the enclosing outlines (folders), outermost first.
    pub categories: Vec<String>,
}

/// Why an OPML document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpmlError {
    /// The bytes are not UTF-8 (and no other encoding was declared).
    #[error("OPML is not valid UTF-8: invalid byte at line {line}, column {column}")]
    NotUtf8 { line: usize, column: usize },
    /// The document is in an encoding other than UTF-8.
    #[error(
        "OPML is encoded as {encoding}; only UTF-8 is supported (re-export or convert the file to UTF-8)"
    )]
    UnsupportedEncoding { encoding: String },
    /// The XML is not well-formed (including a document cut short).
    #[error("malformed OPML at line {line}, column {column}: {message}")]
    Malformed {
        line: usize,
        column: usize,
        message: String,
    },
    /// The document has no root element at all.
    #[error("not an OPML document: no root element")]
    NoRoot,
    /// The root element is something other than `<opml>`.
    #[error("not an OPML document: the root element is <{root}>, expected <opml>")]
    NotOpml { root: String },
}

/// Reads the feeds listed in an OPML document.
///
/// Every `<outline>` with an `xmlUrl` attribute (any case) is a feed, whatever
/// its `type`; outlines without one are categories whose `text` (else `title`)
/// names the feeds inside them. Feeds are returned in document order, without
/// duplicates: the first occurrence of a URL wins (URLs are compared after
/// `reqwest::Url` normalisation when they parse, e.g. host case, else as
/// written). A document with no feeds yields an empty list.
///
/// The input must be UTF-8 (a byte-order mark is allowed). URLs are returned
/// as written: callers importing an OPML file from elsewhere should check them,
/// e.g. with [`is_web_url`], before adding them to the configuration.
pub fn parse_opml(bytes: &[u8]) -> Result<Vec<OpmlFeed>, OpmlError> {
    let text = decode(bytes)?;
    let mut reader = Reader::from_str(text);
    // Duplicate attributes are tolerated (the first one wins); everything else
    // about the markup is checked, including that end tags match.
    reader.config_mut().check_end_names = true;

    let mut parser = Parser::default();
    loop {
        let start = to_usize(reader.buffer_position());
        let event = reader.read_event().map_err(|e| {
            let (line, column) = crate::config::line_col(text, to_usize(reader.error_position()));
            OpmlError::Malformed {
                line,
                column,
                message: e.to_string(),
            }
        })?;
        match event {
            Event::Start(element) => parser.open(text, &element, start, false)?,
            Event::Empty(element) => parser.open(text, &element, start, true)?,
            // `close` pops the element; true when that was the root.
            Event::End(_) if parser.close() => return Ok(parser.feeds),
            Event::Eof => return parser.finish(text),
            _ => {}
        }
    }
}

/// Whether `url` is an absolute `http` or `https` URL with a host — what an
/// OPML file from elsewhere should contain. `file://` URLs and plain paths,
/// which the configuration also accepts, are refused: an imported list should
/// not make newswatch read local files.
pub fn is_web_url(url: &str) -> bool {
    reqwest::Url::parse(url.trim()).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
    })
}

/// Writes `feeds` as an OPML 2.0 document (UTF-8, indented, ending in a newline).
///
/// Each feed becomes `<outline type="rss" text=… title=… xmlUrl=…/>`; a feed
/// without a title gets its URL as `text` (OPML requires one) and no `title`.
/// Feeds with categories are grouped into one category outline per distinct
/// first category, placed where that category first appears; further
/// categories are not written. Feeds without a category stay at the top level
/// in their place. So `parse_opml(write_opml(t, feeds))` gives `feeds` back
/// when each feed has at most one category, feeds of a category are
/// contiguous, and no title is empty or equal to its URL. Characters XML
/// cannot carry (most control characters) are left out.
pub fn write_opml(title: &str, feeds: &[OpmlFeed]) -> String {
    // Top-level entries in order: a feed, or a category and its feeds.
    enum Entry<'a> {
        Feed(&'a OpmlFeed),
        Category(&'a str, Vec<&'a OpmlFeed>),
    }
    let mut entries: Vec<Entry> = Vec::new();
    for feed in feeds {
        match feed.categories.first().filter(|c| !c.is_empty()) {
            None => entries.push(Entry::Feed(feed)),
            Some(category) => {
                let existing = entries.iter_mut().find_map(|e| match e {
                    Entry::Category(name, members) if *name == category.as_str() => Some(members),
                    _ => None,
                });
                match existing {
                    Some(members) => members.push(feed),
                    None => entries.push(Entry::Category(category, vec![feed])),
                }
            }
        }
    }

    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    let mut events = vec![
        Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)),
        Event::Start(BytesStart::new("opml").with_attributes([("version", "2.0")])),
        Event::Start(BytesStart::new("head")),
        Event::Start(BytesStart::new("title")),
        Event::Text(BytesText::new(&xml_chars(title)).into_owned()),
        Event::End(BytesEnd::new("title")),
        Event::End(BytesEnd::new("head")),
        Event::Start(BytesStart::new("body")),
    ];
    for entry in &entries {
        match entry {
            Entry::Feed(feed) => events.push(Event::Empty(feed_outline(feed))),
            Entry::Category(name, members) => {
                let name = xml_chars(name);
                let mut outline = BytesStart::new("outline");
                outline.push_attribute(("text", name.as_str()));
                outline.push_attribute(("title", name.as_str()));
                events.push(Event::Start(outline));
                events.extend(members.iter().map(|f| Event::Empty(feed_outline(f))));
                events.push(Event::End(BytesEnd::new("outline")));
            }
        }
    }
    events.push(Event::End(BytesEnd::new("body")));
    events.push(Event::End(BytesEnd::new("opml")));
    for event in events {
        writer
            .write_event(event)
            .expect("writing XML into a Vec<u8> cannot fail");
    }
    // The writer only copies `&str` data and ASCII markup, so this is UTF-8.
    let mut out = String::from_utf8_lossy(&writer.into_inner()).into_owned();
    out.push('\n');
    out
}

fn feed_outline(feed: &OpmlFeed) -> BytesStart<'static> {
    let url = xml_chars(&feed.url);
    let title = feed.title.as_deref().map(xml_chars);
    let mut outline = BytesStart::new("outline");
    outline.push_attribute(("type", "rss"));
    // `push_attribute` escapes the values (`&`, `<`, `>`, quotes, tabs and
    // newlines, so they survive attribute-value normalisation).
    outline.push_attribute(("text", title.as_deref().unwrap_or(&url)));
    if let Some(title) = &title {
        outline.push_attribute(("title", title.as_str()));
    }
    outline.push_attribute(("xmlUrl", url.as_str()));
    outline.into_owned()
}

/// `text` without the characters XML 1.0 cannot represent, even escaped.
fn xml_chars(text: &str) -> String {
    text.chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
        })
        .collect()
}

/// The document as UTF-8 text, without a byte-order mark.
fn decode(bytes: &[u8]) -> Result<&str, OpmlError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.starts_with(b"\xFF\xFE")
        || bytes.starts_with(b"\xFE\xFF")
        || bytes.starts_with(b"<\0")
        || bytes.starts_with(b"\0<")
    {
        return Err(OpmlError::UnsupportedEncoding {
            encoding: "UTF-16".into(),
        });
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(e) => {
            let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
            match declared_encoding(valid) {
                Some(encoding)
                    if !encoding.eq_ignore_ascii_case("utf-8")
                        && !encoding.eq_ignore_ascii_case("utf8") =>
                {
                    Err(OpmlError::UnsupportedEncoding { encoding })
                }
                _ => {
                    let (line, column) = crate::config::line_col(valid, valid.len());
                    Err(OpmlError::NotUtf8 { line, column })
                }
            }
        }
    }
}

/// The `encoding` of the XML declaration at the start of `text`, if any.
fn declared_encoding(text: &str) -> Option<String> {
    match Reader::from_str(text).read_event() {
        Ok(Event::Decl(decl)) => decl
            .encoding()
            .and_then(Result::ok)
            .map(|e| e.trim().to_string()),
        _ => None,
    }
}

fn to_usize(position: u64) -> usize {
    usize::try_from(position).unwrap_or(usize::MAX)
}

/// One open element.
struct Frame {
    /// Byte offset of its `<`, to report it if it is never closed.
    start: usize,
    /// Whether it pushed a name onto [`Parser::categories`].
    named: bool,
}

/// The state of the event loop in [`parse_opml`].
#[derive(Default)]
struct Parser {
    /// Whether the `<opml>` root has been seen.
    in_root: bool,
    open: Vec<Frame>,
    categories: Vec<String>,
    feeds: Vec<OpmlFeed>,
    seen: HashSet<String>,
}

impl Parser {
    /// Handles a start tag (or an empty element when `empty`).
    fn open(
        &mut self,
        text: &str,
        element: &BytesStart,
        start: usize,
        empty: bool,
    ) -> Result<(), OpmlError> {
        if !self.in_root {
            let name = element.local_name();
            if !name.as_ref().eq_ignore_ascii_case("opml") {
                return Err(OpmlError::NotOpml {
                    root: element.name().as_ref().to_string(),
                });
            }
            self.in_root = true;
            if !empty {
                self.open.push(Frame {
                    start,
                    named: false,
                });
            }
            return Ok(());
        }

        let mut named = false;
        if element
            .local_name()
            .as_ref()
            .eq_ignore_ascii_case("outline")
        {
            let attrs = OutlineAttrs::read(element).map_err(|message| {
                let (line, column) = crate::config::line_col(text, start);
                OpmlError::Malformed {
                    line,
                    column,
                    message,
                }
            })?;
            match attrs.xml_url {
                Some(url) => self.add_feed(url, attrs.text.or(attrs.title)),
                None => {
                    if let Some(name) = attrs.text.or(attrs.title)
                        && self.categories.len() < MAX_CATEGORY_DEPTH
                    {
                        self.categories.push(name);
                        named = true;
                    }
                }
            }
        }
        if empty {
            if named {
                self.categories.pop();
            }
        } else {
            self.open.push(Frame { start, named });
        }
        Ok(())
    }

    /// Handles an end tag (quick-xml has checked that it matches); returns
    /// whether it closed the root.
    fn close(&mut self) -> bool {
        if let Some(frame) = self.open.pop()
            && frame.named
        {
            self.categories.pop();
        }
        self.in_root && self.open.is_empty()
    }

    /// The end of input: fine after an empty `<opml/>`, an error inside it.
    fn finish(self, text: &str) -> Result<Vec<OpmlFeed>, OpmlError> {
        if !self.in_root {
            return Err(OpmlError::NoRoot);
        }
        match self.open.last() {
            None => Ok(self.feeds),
            Some(frame) => {
                let (line, column) = crate::config::line_col(text, frame.start);
                let name: String = text
                    .get(frame.start + 1..)
                    .unwrap_or_default()
                    .chars()
                    .take_while(|&c| !c.is_whitespace() && c != '>' && c != '/')
                    .take(64)
                    .collect();
                let (end_line, _) = crate::config::line_col(text, text.len());
                Err(OpmlError::Malformed {
                    line: end_line,
                    column: 1,
                    message: format!(
                        "the document ends before <{name}> (opened at line {line}, column {column}) is closed; is the file truncated?"
                    ),
                })
            }
        }
    }

    fn add_feed(&mut self, url: String, title: Option<String>) {
        let key = reqwest::Url::parse(&url).map_or_else(|_| url.clone(), |u| u.to_string());
        if !self.seen.insert(key) {
            return;
        }
        let title = title.filter(|t| *t != url);
        self.feeds.push(OpmlFeed {
            url,
            title,
            categories: self.categories.clone(),
        });
    }
}

/// The attributes of an `<outline>` that matter here, decoded and trimmed;
/// blank values count as absent.
#[derive(Default)]
struct OutlineAttrs {
    xml_url: Option<String>,
    text: Option<String>,
    title: Option<String>,
}

impl OutlineAttrs {
    fn read(element: &BytesStart) -> Result<OutlineAttrs, String> {
        let mut attrs = OutlineAttrs::default();
        let mut iter = element.attributes();
        // Duplicate attributes are not well-formed XML, but harmless here.
        iter.with_checks(false);
        for attribute in iter {
            let attribute = attribute.map_err(|e| format!("in <outline>: {e}"))?;
            let key = attribute.key.local_name();
            let slot = if key.as_ref().eq_ignore_ascii_case("xmlUrl") {
                &mut attrs.xml_url
            } else if key.as_ref().eq_ignore_ascii_case("text") {
                &mut attrs.text
            } else if key.as_ref().eq_ignore_ascii_case("title") {
                &mut attrs.title
            } else {
                continue;
            };
            if slot.is_none() {
                let value = attribute_value(&attribute);
                let value = value.trim();
                if !value.is_empty() {
                    *slot = Some(value.to_string());
                }
            }
        }
        Ok(attrs)
    }
}

/// The attribute's value with references resolved and whitespace normalised;
/// values quick-xml rejects (a raw `&` in a URL, `&nbsp;`) are decoded
/// leniently instead of failing the whole import.
fn attribute_value(attribute: &Attribute) -> String {
    match attribute.normalized_value(XmlVersion::Implicit1_0) {
        Ok(value) => value.into_owned(),
        Err(_) => lenient_unescape(&attribute.value),
    }
}

/// Resolves the references it knows (XML's five, numeric ones, a few common
/// HTML ones), keeps anything else literally, and turns tabs and line breaks
/// into spaces as XML attribute normalisation does.
fn lenient_unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find(['&', '\t', '\n', '\r']) {
        out.push_str(&rest[..i]);
        let marker = rest.as_bytes()[i];
        let after = &rest[i + 1..];
        if marker != b'&' {
            out.push(' ');
            rest = if marker == b'\r' {
                after.strip_prefix('\n').unwrap_or(after)
            } else {
                after
            };
            continue;
        }
        // Look for the `;` only nearby, so a long run of `&` stays linear.
        let resolved = after
            .bytes()
            .take(32)
            .position(|b| b == b';')
            .and_then(|semi| Some((resolve_reference(&after[..semi])?, semi)));
        match resolved {
            Some((c, semi)) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn resolve_reference(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return char::from_u32(code).filter(|&c| c != '\0');
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "euro" => '€',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const READER_EXPORT: &[u8] = include_bytes!("../tests/fixtures/opml/reader-export.opml");
    const MALFORMED: &[u8] = include_bytes!("../tests/fixtures/opml/malformed.opml");

    fn feed(url: &str, title: Option<&str>, categories: &[&str]) -> OpmlFeed {
        OpmlFeed {
            url: url.into(),
            title: title.map(Into::into),
            categories: categories.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn malformed_at(result: Result<Vec<OpmlFeed>, OpmlError>) -> (usize, usize, String) {
        match result {
            Err(OpmlError::Malformed {
                line,
                column,
                message,
            }) => (line, column, message),
            other => panic!("expected a malformed-XML error, got {other:?}"),
        }
    }

    #[test]
    fn reads_a_reader_export() {
        let feeds = parse_opml(READER_EXPORT).unwrap();
        let expected = vec![
            feed(
                "https://news.example.org/world/rss.xml",
                Some("Example World Desk"),
                &["News", "World"],
            ),
            feed(
                "https://wire.example.com/international.atom",
                Some("Example Wire — International"),
                &["News", "World"],
            ),
            feed(
                "https://europe.example.org/feed?lang=en&section=politics",
                Some("Europe Today: Politics & Policy"),
                &["News", "Europe"],
            ),
            feed(
                "https://parliament.example.eu/press/rss",
                Some("Parliament Press Room"),
                &["News", "Europe"],
            ),
            feed(
                "https://defence.example.net/feed.xml",
                Some("Defence Monitor"),
                &["Security"],
            ),
            feed(
                "https://blog.example.com/atom.xml",
                Some("Analyst's Notebook"),
                &[],
            ),
            feed(
                "https://gazette.example.org/rss",
                Some("Gazette Économie"),
                &[],
            ),
            feed("https://untitled.example.com/feed", None, &[]),
        ];
        assert_eq!(feeds, expected);
    }

    #[test]
    fn truncated_document_is_located() {
        let (line, _, message) = malformed_at(parse_opml(MALFORMED));
        assert!(line > 1, "{line}: {message}");
        assert!(message.contains("truncated"), "{message}");
        let shown = parse_opml(MALFORMED).unwrap_err().to_string();
        assert!(shown.starts_with("malformed OPML at line "), "{shown}");
    }

    #[test]
    fn syntax_errors_are_located() {
        let text = "<opml>\n<body>\n  <outline text=\"a\"></body>\n</opml>";
        let (line, column, message) = malformed_at(parse_opml(text.as_bytes()));
        assert_eq!((line, column), (3, 21), "{message}");
        assert!(message.contains("</outline>"), "{message}");

        let text = "<opml><body>\n<outline xmlUrl=https://x.example.org/ />";
        let (line, column, _) = malformed_at(parse_opml(text.as_bytes()));
        assert_eq!((line, column), (2, 1));

        let text = "<opml><body><outline xmlUrl=\"https://x.example.org/";
        let (line, column, message) = malformed_at(parse_opml(text.as_bytes()));
        assert_eq!((line, column), (1, 13), "{message}");
    }

    #[test]
    fn root_must_be_opml() {
        assert_eq!(parse_opml(b""), Err(OpmlError::NoRoot));
        assert_eq!(parse_opml(b"  <!-- nothing -->\n"), Err(OpmlError::NoRoot));
        assert_eq!(
            parse_opml(b"<rss version=\"2.0\"><channel/></rss>"),
            Err(OpmlError::NotOpml { root: "rss".into() })
        );
    }

    #[test]
    fn no_feeds_is_not_an_error() {
        assert_eq!(parse_opml(b"<opml/>"), Ok(vec![]));
        let text = b"<?xml version='1.0'?><opml version='1.0'><head><title>x</title></head>\
                     <body><outline text='Empty folder'/></body></opml>";
        assert_eq!(parse_opml(text), Ok(vec![]));
    }

    #[test]
    fn attribute_names_and_entities() {
        let text = "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
            <OPML><body>\
            <outline XMLURL=\" https://a.example.org/?x=1&amp;y=2 \" TEXT=\"A &lt;&amp;&gt; &quot;B&quot; &#233;\"/>\
            <outline xmlurl=\"https://b.example.org/?x=1&y=2\" title=\"B&nbsp;news &amp; more\" title=\"ignored\"/>\
            <outline xmlUrl=\"https://c.example.org/\" text=\"\" title=\"C\"/>\
            </body></OPML>";
        let feeds = parse_opml(text.as_bytes()).unwrap();
        assert_eq!(
            feeds,
            vec![
                feed("https://a.example.org/?x=1&y=2", Some("A <&> \"B\" é"), &[]),
                feed(
                    "https://b.example.org/?x=1&y=2",
                    Some("B\u{a0}news & more"),
                    &[]
                ),
                feed("https://c.example.org/", Some("C"), &[]),
            ]
        );
    }

    #[test]
    fn duplicates_compare_normalised_urls() {
        let text = br#"<opml><body>
            <outline text="First" xmlUrl="https://Example.org/rss"/>
            <outline text="Folder"><outline text="Second" xmlUrl="https://example.org/rss"/></outline>
            <outline text="Other" xmlUrl="https://example.org/rss/"/>
        </body></opml>"#;
        let feeds = parse_opml(text).unwrap();
        assert_eq!(
            feeds,
            vec![
                feed("https://Example.org/rss", Some("First"), &[]),
                feed("https://example.org/rss/", Some("Other"), &[]),
            ]
        );
    }

    #[test]
    fn encodings() {
        let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><opml><body>\
                       <outline text=\"Caf\xE9\" xmlUrl=\"https://x.example.org/\"/></body></opml>";
        assert_eq!(
            parse_opml(latin1),
            Err(OpmlError::UnsupportedEncoding {
                encoding: "ISO-8859-1".into()
            })
        );
        let ascii_latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><opml><body>\
                             <outline xmlUrl=\"https://x.example.org/\"/></body></opml>";
        assert_eq!(parse_opml(ascii_latin1).map(|f| f.len()), Ok(1));
        assert_eq!(
            parse_opml(b"<opml>\n<body>\n\xFF"),
            Err(OpmlError::NotUtf8 { line: 3, column: 1 })
        );
        assert!(matches!(
            parse_opml(b"\xFF\xFE<\0o\0"),
            Err(OpmlError::UnsupportedEncoding { .. })
        ));
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let depth = 100_000;
        let mut text = String::from("<opml><body>");
        for i in 0..depth {
            text.push_str(&format!("<outline text=\"c{i}\">"));
        }
        text.push_str("<outline xmlUrl=\"https://deep.example.org/\"/>");
        text.push_str(&"</outline>".repeat(depth));
        text.push_str("<outline xmlUrl=\"https://shallow.example.org/\"/></body></opml>");
        let feeds = parse_opml(text.as_bytes()).unwrap();
        assert_eq!(feeds.len(), 2);
        assert_eq!(feeds[0].categories.len(), MAX_CATEGORY_DEPTH);
        assert_eq!(feeds[0].categories[0], "c0");
        assert_eq!(feeds[0].categories[MAX_CATEGORY_DEPTH - 1], "c63");
        assert!(feeds[1].categories.is_empty());

        // Unclosed, hostile nesting: an error, not a crash.
        let text = "<opml>".to_string() + &"<outline>".repeat(depth);
        assert!(matches!(
            parse_opml(text.as_bytes()),
            Err(OpmlError::Malformed { .. })
        ));
    }

    #[test]
    fn never_panics_on_prefixes_or_garbage() {
        for end in 0..=READER_EXPORT.len() {
            let _ = parse_opml(&READER_EXPORT[..end]);
        }
        let samples: [&[u8]; 10] = [
            b"<",
            b"<opml",
            b"<opml><outline xmlUrl='&#xFFFFFFFF;'/></opml>",
            b"<opml><outline xmlUrl='&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&;'/></opml>",
            b"<opml><outline xmlUrl='&#0;' text='&#;'/></opml>",
            b"<opml></outline></opml>",
            b"<opml><![CDATA[",
            b"<!DOCTYPE opml [<!ENTITY a 'aaaa'>]><opml><outline xmlUrl='&a;'/></opml>",
            b"\xEF\xBB\xBF",
            b"\0\0\0\0",
        ];
        for sample in samples {
            let _ = parse_opml(sample);
        }
    }

    #[test]
    fn writes_opml_2() {
        let out = write_opml(
            "My <feeds>",
            &[
                feed("https://a.example.org/rss", Some("A"), &["World"]),
                feed("https://b.example.org/rss", None, &[]),
            ],
        );
        let expected = r#"<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head>
    <title>My &lt;feeds&gt;</title>
  </head>
  <body>
    <outline text="World" title="World">
      <outline type="rss" text="A" title="A" xmlUrl="https://a.example.org/rss"/>
    </outline>
    <outline type="rss" text="https://b.example.org/rss" xmlUrl="https://b.example.org/rss"/>
  </body>
</opml>
"#;
        assert_eq!(out, expected);
    }

    #[test]
    fn groups_by_first_category() {
        let feeds = [
            feed("https://1.example.org/", Some("1"), &["World", "Africa"]),
            feed("https://2.example.org/", Some("2"), &[]),
            feed("https://3.example.org/", Some("3"), &["Tech"]),
            feed("https://4.example.org/", Some("4"), &["World"]),
        ];
        let back = parse_opml(write_opml("t", &feeds).as_bytes()).unwrap();
        let summary: Vec<(&str, Vec<String>)> = back
            .iter()
            .map(|f| (f.title.as_deref().unwrap_or(""), f.categories.clone()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("1", vec!["World".to_string()]),
                ("4", vec!["World".to_string()]),
                ("2", vec![]),
                ("3", vec!["Tech".to_string()]),
            ]
        );
    }

    #[test]
    fn round_trip() {
        let feeds = vec![
            feed(
                "https://a.example.org/rss?x=1&y=<2>",
                Some("Fish & Chips <Daily> \"quoted\" 'single'"),
                &["Food & Drink"],
            ),
            feed(
                "https://b.example.org/feed",
                Some("Ελληνικά · 日本語 · Ünïcödé — “curly”"),
                &["Food & Drink"],
            ),
            feed(
                "https://c.example.org/atom",
                Some("Tabs\tand\nnewlines"),
                &["<Weird> \"folder\""],
            ),
            feed("https://d.example.org/", None, &[]),
            feed("https://e.example.org/", Some("&amp; literally"), &[]),
            feed("https://f.example.org/", Some("Über"), &["Ünïcödé"]),
        ];
        let written = write_opml("Round & trip", &feeds);
        assert_eq!(parse_opml(written.as_bytes()).unwrap(), feeds, "{written}");
        // Parsing what the writer wrote is a fixed point.
        let again = write_opml("Round & trip", &parse_opml(written.as_bytes()).unwrap());
        assert_eq!(again, written);
    }

    #[test]
    fn fixture_round_trips_through_the_writer() {
        let mut feeds = parse_opml(READER_EXPORT).unwrap();
        // The writer keeps only the first category.
        for f in &mut feeds {
            f.categories.truncate(1);
        }
        let back = parse_opml(write_opml("export", &feeds).as_bytes()).unwrap();
        assert_eq!(back, feeds);
    }

    #[test]
    fn control_characters_are_dropped() {
        let feeds = [feed("https://x.example.org/", Some("bell\u{7}ring"), &[])];
        let back = parse_opml(write_opml("t\u{0}", &feeds).as_bytes()).unwrap();
        assert_eq!(back[0].title.as_deref(), Some("bellring"));
    }

    #[test]
    fn web_urls() {
        assert!(is_web_url("https://example.org/rss"));
        assert!(is_web_url(" http://example.org "));
        assert!(!is_web_url("file:///etc/passwd"));
        assert!(!is_web_url("/etc/passwd"));
        assert!(!is_web_url("feeds/local.xml"));
        assert!(!is_web_url("javascript:alert(1)"));
        assert!(!is_web_url("ftp://example.org/rss"));
    }
}
