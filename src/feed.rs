//! Feed parsing: bytes in, plain-text [`Item`]s out.
//!
//! feed-rs reads RSS 0.9x/1.0/2.0, Atom and JSON Feed from raw bytes (it
//! honours the XML prolog's encoding). This module gives every entry a stable
//! key — the guid/id, else the link, else a hash of title, date and text — so
//! the same item is recognised on every poll, and turns HTML bodies into plain
//! text with a real HTML parser. It never fetches and never decides whether
//! an item is new.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

mod html;

pub use html::{html_to_text, html_to_text_both_ways};

/// Marker returned by our id generator when an entry has neither guid nor id;
/// it cannot occur in a real feed because XML forbids the NUL character.
const NO_ID: &str = "\u{0}newswatch:no-id";

/// One entry of a feed, as plain text.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Stable identity of the item within its feed.
    pub key: String,
    pub title: String,
    pub link: Option<String>,
    pub published: Option<DateTime<Utc>>,
    pub summary: String,
    pub content: String,
}

/// Query parameters that only record where a reader came from (campaign
/// tags and ad-click ids), besides every `utm_…` one. They never pick the
/// article, and some feeds change them on every fetch.
const TRACKING_PARAMS: &[&str] = &[
    "fbclid", "gclid", "gclsrc", "dclid", "msclkid", "yclid", "twclid", "igshid", "mc_cid",
    "mc_eid", "_hsenc", "_hsmi", "mkt_tok",
];

/// `link` without its tracking parameters ([`TRACKING_PARAMS`] and
/// `utm_…`, names compared without case); the rest of the link is kept as
/// written, other parameters in their order and the fragment included.
/// Items are keyed and compared by this form, so that an article whose
/// link a feed tags differently on each fetch is still recognised.
pub fn canonical_link(link: &str) -> std::borrow::Cow<'_, str> {
    let is_tracking = |param: &str| {
        let name = param.split('=').next().unwrap_or_default();
        let prefix = name.get(..4).unwrap_or_default();
        prefix.eq_ignore_ascii_case("utm_")
            || TRACKING_PARAMS.iter().any(|t| t.eq_ignore_ascii_case(name))
    };
    // A `?` after the `#` belongs to the fragment.
    let (before_fragment, fragment) = link.split_at(link.find('#').unwrap_or(link.len()));
    let Some((path, query)) = before_fragment.split_once('?') else {
        return link.into();
    };
    if !query.split('&').any(is_tracking) {
        return link.into();
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !is_tracking(p))
        .collect();
    let mut canonical = String::with_capacity(link.len());
    canonical.push_str(path);
    if !kept.is_empty() {
        canonical.push('?');
        canonical.push_str(&kept.join("&"));
    }
    canonical.push_str(fragment);
    canonical.into()
}

/// A parsed feed.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedFeed {
    pub title: Option<String>,
    /// Suggested polling interval in minutes (RSS `<ttl>`), if the feed gives one.
    pub ttl_minutes: Option<u32>,
    pub items: Vec<Item>,
}

/// How the cause of a [`FeedError`] starts when the parser panicked.
pub const PARSER_CRASHED: &str = "the feed parser crashed on this document";

/// Why a document could not be read as a feed.
#[derive(Debug, thiserror::Error)]
#[error("not a readable feed: {cause}")]
pub struct FeedError {
    pub cause: String,
}

/// Parses feed bytes. `base_url` resolves relative links.
pub fn parse_feed(bytes: &[u8], base_url: &str) -> Result<ParsedFeed, FeedError> {
    parse_feed_as(bytes, base_url, None)
}

/// [`parse_feed`] for a document served with `charset` in its
/// `Content-Type`. The charset is used when the document does not say its
/// own encoding (no byte order mark, no label in its XML declaration) and
/// is not UTF-8.
pub fn parse_feed_as(
    bytes: &[u8],
    base_url: &str,
    charset: Option<&str>,
) -> Result<ParsedFeed, FeedError> {
    let base = base_url.starts_with("http").then_some(base_url);
    let served = charset.and_then(|c| encoding_rs::Encoding::for_label(c.as_bytes()));
    let defused = decode_and_defuse(bytes, served);
    let bytes = defused.as_deref().unwrap_or(bytes);
    let parse = |bytes: &[u8]| parse_guarded(bytes, base);
    // A repair for what real feeds get wrong, tried when the document as it
    // is fails: an `<rss>` root without a version feed-rs knows. (Bytes that
    // are not UTF-8 were replaced before, see `decode_and_defuse`.) The
    // repair can lengthen the XML declaration (the `<rss` patched may lie
    // inside it), so the repaired document is defused again.
    let recover = || {
        let patched = patch_rss_version(bytes)?;
        let defused = defuse_declarations(&patched);
        parse(defused.as_deref().unwrap_or(&patched)).ok()?.ok()
    };
    let feed = match parse(bytes) {
        Ok(Ok(feed)) => feed,
        Ok(Err(first)) => recover().ok_or_else(|| describe_error(&first, bytes))?,
        Err(crashed) => recover().ok_or(crashed)?,
    };

    let items = feed
        .entries
        .into_iter()
        .map(|entry| {
            let title = entry
                .title
                .as_ref()
                .map(|t| html_to_text(&t.content))
                .unwrap_or_default();
            let link = entry
                .links
                .iter()
                .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
                .or(entry.links.first())
                .map(|l| canonical_link(l.href.trim()).into_owned())
                .filter(|l| !l.is_empty());
            let summary = entry
                .summary
                .as_ref()
                .map(|s| html_to_text(&s.content))
                .unwrap_or_default();
            let content = entry
                .content
                .as_ref()
                .and_then(|c| c.body.as_deref())
                .map(html_to_text)
                .unwrap_or_default();
            let published = entry.published.or(entry.updated);
            let key = if entry.id != NO_ID && !entry.id.trim().is_empty() {
                entry.id.trim().to_string()
            } else if let Some(link) = &link {
                link.clone()
            } else {
                let mut hash = Sha256::new();
                hash.update(title.as_bytes());
                hash.update([0]);
                hash.update(
                    published
                        .map(|p| p.to_rfc3339())
                        .unwrap_or_default()
                        .as_bytes(),
                );
                hash.update([0]);
                hash.update(summary.as_bytes());
                hash.update(content.as_bytes());
                format!("sha256:{}", hex(&hash.finalize()[..16]))
            };
            Item {
                key,
                title,
                link,
                published,
                summary,
                content,
            }
        })
        .collect();
    Ok(ParsedFeed {
        title: feed.title.map(|t| html_to_text(&t.content)),
        ttl_minutes: feed.ttl,
        items,
    })
}

fn describe_error(error: &feed_rs::parser::ParseFeedError, bytes: &[u8]) -> FeedError {
    use feed_rs::parser::{ParseErrorKind, ParseFeedError};
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).to_ascii_lowercase();
    let cause = match error {
        ParseFeedError::ParseError(ParseErrorKind::NoFeedRoot) if head.contains("<html") => {
            "the document is an HTML page, not a feed".to_string()
        }
        ParseFeedError::ParseError(ParseErrorKind::NoFeedRoot)
            if bytes.iter().all(u8::is_ascii_whitespace) =>
        {
            "the document is empty".to_string()
        }
        ParseFeedError::ParseError(ParseErrorKind::NoFeedRoot) => {
            "no <rss>, <feed> or <rdf:RDF> root element and not a JSON Feed".to_string()
        }
        ParseFeedError::XmlReader(e) => format!("malformed XML: {e}"),
        other => other.to_string(),
    };
    FeedError { cause }
}

/// feed-rs on `bytes`, with a panic turned into a [`FeedError`].
///
/// feed-rs, and quick-xml under it, have panicked on some malformed
/// documents (see [`defuse_declarations`]). Those found are defused before
/// parsing; any other is caught here and reported as the feed's error, so
/// that one hostile feed cannot take a poll or a command down.
fn parse_guarded(
    bytes: &[u8],
    base: Option<&str>,
) -> Result<Result<feed_rs::model::Feed, feed_rs::parser::ParseFeedError>, FeedError> {
    std::panic::catch_unwind(|| {
        feed_rs::parser::Builder::new()
            .base_uri(base)
            .id_generator(|_, _, _| NO_ID.to_string())
            .build()
            .parse(bytes)
    })
    .map_err(|panic| FeedError {
        cause: format!("{PARSER_CRASHED}: {}", crate::panics::message(&*panic)),
    })
}

/// Adds `version="2.0"` to an `<rss` root that lacks a version feed-rs knows.
fn patch_rss_version(bytes: &[u8]) -> Option<Vec<u8>> {
    let head = &bytes[..bytes.len().min(4096)];
    let at = find(head, b"<rss")?;
    let tag_end = at + head[at..].iter().position(|&b| b == b'>')?;
    let tag = &head[at..tag_end];
    let mut patched = Vec::with_capacity(bytes.len() + 16);
    patched.extend_from_slice(&bytes[..at]);
    match find(tag, b"version=") {
        Some(v) => {
            // Replace an unknown version value ("2.01", "3.0") with 2.0.
            let quote = *tag.get(v + 8)?;
            let value_end = v + 9 + tag[v + 9..].iter().position(|&b| b == quote)?;
            patched.extend_from_slice(&tag[..v]);
            patched.extend_from_slice(b"version=\"2.0\"");
            patched.extend_from_slice(&tag[value_end + 1..]);
        }
        None => {
            patched.extend_from_slice(b"<rss version=\"2.0\"");
            patched.extend_from_slice(&tag[4..]);
        }
    }
    patched.extend_from_slice(&bytes[tag_end..]);
    Some(patched)
}

/// The document with the XML declarations that could crash the parser turned
/// into harmless processing instructions, and decoded to UTF-8 when it is in
/// another encoding; `None` when it needs neither.
///
/// quick-xml (under feed-rs) decodes the first 64 bytes of a document as
/// UTF-8 before it has read the declaration, and switches its decoder when
/// it meets a declaration naming another encoding. Both go wrong:
/// - a byte of the declared encoding that is not UTF-8 within those first 64
///   bytes (`<title>Zürich` in a short Latin-1 feed) makes the document
///   unreadable;
/// - a switch once it has decoded past the first 64 bytes panics. That
///   happens with a second declaration in mid-document (a template that
///   includes another document), a first one longer than that, or the
///   declaration of a UTF-16 document.
///
/// So quick-xml is only given UTF-8, with no label of another encoding to
/// switch to. A document in UTF-16 is decoded here; a document whose first
/// declaration names another encoding that encoding_rs knows
/// (windows-1252, ISO-8859-1, KOI8-R, Shift_JIS, …) is decoded by
/// encoding_rs; broken UTF-8 gets U+FFFD; a first declaration loses a label
/// of any encoding but UTF-8. A long first declaration is rewritten to its
/// version and encoding. XML allows
/// a declaration only as a document's first markup, so every other
/// `<?xml …?>` becomes `<?xml-misplaced …?>`, which parsers skip. That is
/// done everywhere, CDATA included: deciding what is markup is the parser's
/// job, and a stray declaration inside CDATA is rare enough to be marked
/// too.
fn defuse_declarations(bytes: &[u8]) -> Option<Vec<u8>> {
    decode_and_defuse(bytes, None)
}

/// [`defuse_declarations`], with the encoding the document was served in
/// for a document that does not name its own and is not UTF-8.
fn decode_and_defuse(
    bytes: &[u8],
    served: Option<&'static encoding_rs::Encoding>,
) -> Option<Vec<u8>> {
    let utf16 = match bytes {
        [0xFE, 0xFF, ..] | [0, b'<', 0, b'?', ..] => Some(u16::from_be_bytes as fn([u8; 2]) -> u16),
        [0xFF, 0xFE, ..] | [b'<', 0, b'?', 0, ..] => Some(u16::from_le_bytes as fn([u8; 2]) -> u16),
        _ => None,
    };
    let mut decoded = None;
    if let Some(unit) = utf16 {
        let units = bytes
            .chunks_exact(2)
            .map(|pair| unit([pair[0], pair[1]]))
            .skip_while(|&u| u == 0xFEFF);
        let text: String = char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect();
        decoded = Some(text.into_bytes());
    }
    // The one declaration quick-xml may act on: the document's first markup.
    let first_declaration = |text: &[u8], bom: usize| {
        let at = text[bom..]
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .map(|at| bom + at)
            .filter(|&at| is_declaration(&text[at..]))?;
        let end = find(&text[at..], b"?>").map(|i| at + i + 2)?;
        Some((at, end))
    };
    let has_bom = |text: &[u8]| text.starts_with(b"\xEF\xBB\xBF");
    let utf8 = decoded.is_none() && std::str::from_utf8(bytes).is_ok();
    // The document's own label, else the encoding it was served in if it
    // is not UTF-8 (valid UTF-8 is far likelier UTF-8 than anything else).
    let declaration = first_declaration(bytes, 0);
    let label = declaration.and_then(|(at, end)| declared_encoding(&bytes[at..end]));
    let encoding = match label {
        Some(label) => encoding_rs::Encoding::for_label(label),
        None => served.filter(|&e| e != encoding_rs::UTF_8 && !utf8),
    };
    if decoded.is_none()
        && !has_bom(bytes)
        && let Some(encoding) = encoding
        // A UTF-16 label on a document that is not UTF-16 is wrong:
        // decoding it as UTF-16 would only make noise.
        && ![encoding_rs::UTF_8, encoding_rs::UTF_16LE, encoding_rs::UTF_16BE].contains(&encoding)
    {
        let (text, _) = encoding.decode_without_bom_handling(bytes);
        decoded = Some(text.into_owned().into_bytes());
    }
    // What is still not UTF-8 gets U+FFFD for its broken sequences: the
    // parser's decoder would drop them instead, and dropping a byte can
    // make a declaration appear (`<?xm\xAEl` reads as `<?xml`).
    if decoded.is_none() && !utf8 {
        decoded = Some(String::from_utf8_lossy(bytes).into_owned().into_bytes());
    }
    let recoded = decoded.is_some();
    let text = decoded.as_deref().unwrap_or(bytes);
    let bom = if has_bom(text) { 3 } else { 0 };
    let mut out: Option<Vec<u8>> = recoded.then(|| Vec::with_capacity(text.len()));
    let mut copied = 0;
    // A UTF-16 document's own declaration is wrong once it is decoded, and
    // is marked below like any other.
    let first = first_declaration(text, bom).filter(|_| utf16.is_none());
    // The text is UTF-8 now, so a label of any other encoding is wrong (one
    // decoded above, one a byte order mark overrides, a UTF-16 label on a
    // document that is not UTF-16), and would make the parser switch.
    let first_label = first.and_then(|(at, end)| declared_encoding(&text[at..end]));
    let relabel = first_label
        .and_then(encoding_rs::Encoding::for_label)
        .is_some_and(|e| e != encoding_rs::UTF_8);
    // A first declaration that ends past byte 60, or whose label must go, is
    // rewritten to what matters.
    if let Some((_, end)) = first.filter(|&(_, end)| end > 60 || relabel) {
        let out = out.get_or_insert_with(|| Vec::with_capacity(text.len()));
        out.extend_from_slice(&text[..bom]);
        out.extend_from_slice(b"<?xml version=\"1.0\"");
        // Labels are short words; anything else names no encoding.
        let label = first_label.filter(|l| {
            !relabel
                && l.len() <= 20
                && l.iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        });
        if let Some(label) = label {
            out.extend_from_slice(b" encoding=\"");
            out.extend_from_slice(label);
            out.push(b'"');
        }
        out.extend_from_slice(b"?>");
        copied = end;
    }
    // Within the first declaration `<?xml` is its text, not a declaration.
    // Only a `<` can open one: going from `<` to `<` keeps this scan, which
    // sees every byte of every feed, a small part of reading it.
    let mut from = first.map_or(0, |(_, end)| end);
    while let Some(offset) = text[from..].iter().position(|&b| b == b'<') {
        let at = from + offset;
        from = at + 1;
        if !is_declaration(&text[at..]) {
            continue;
        }
        let out = out.get_or_insert_with(|| Vec::with_capacity(text.len() + 16));
        out.extend_from_slice(&text[copied..at + 5]);
        out.extend_from_slice(b"-misplaced");
        copied = at + 5;
    }
    out.map(|mut out| {
        out.extend_from_slice(&text[copied..]);
        out
    })
}

/// Whether `text` starts with what quick-xml reads as an XML declaration:
/// `<?xml` then whitespace or `?>`.
fn is_declaration(text: &[u8]) -> bool {
    text.starts_with(b"<?xml") && matches!(text.get(5), Some(b' ' | b'\t' | b'\r' | b'\n' | b'?'))
}

/// The value of a declaration's `encoding` pseudo-attribute.
fn declared_encoding(declaration: &[u8]) -> Option<&[u8]> {
    let at = declaration
        .windows(9)
        .position(|w| w[0].is_ascii_whitespace() && &w[1..] == b"encoding")?;
    let value = declaration[at + 9..]
        .trim_ascii_start()
        .strip_prefix(b"=")?
        .trim_ascii_start();
    let quote = *value.first().filter(|&&q| q == b'"' || q == b'\'')?;
    let len = value[1..].iter().position(|&b| b == quote)?;
    Some(&value[1..1 + len])
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn links_lose_their_tracking_parameters_only() {
        let cases = [
            ("https://x.org/a", "https://x.org/a"),
            ("https://x.org/a?id=7", "https://x.org/a?id=7"),
            ("https://x.org/a?utm_source=rss", "https://x.org/a"),
            (
                "https://x.org/a?id=7&utm_source=rss&UTM_Medium=feed&page=2",
                "https://x.org/a?id=7&page=2",
            ),
            ("https://x.org/a?fbclid=abc#top", "https://x.org/a#top"),
            ("https://x.org/a?GCLID=1&&id=2", "https://x.org/a?id=2"),
            // Not a tracking parameter: only names are compared.
            (
                "https://x.org/a?q=utm_source",
                "https://x.org/a?q=utm_source",
            ),
            ("https://x.org/a?utm=1", "https://x.org/a?utm=1"),
            // A `?` inside the fragment is not a query.
            (
                "https://x.org/a#x?utm_source=rss",
                "https://x.org/a#x?utm_source=rss",
            ),
            ("https://x.org/a?", "https://x.org/a?"),
            ("?utm_source=é", ""),
            ("tag:x.org,2026:é?ü=1", "tag:x.org,2026:é?ü=1"),
        ];
        for (link, canonical) in cases {
            assert_eq!(super::canonical_link(link), canonical, "{link}");
        }
    }

    use super::*;

    #[test]
    fn keys_fall_back_from_guid_to_link_to_hash() {
        let rss = br#"<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
            <item><guid>g-1</guid><title>With guid</title><link>http://x/1</link></item>
            <item><title>Link only</title><link>http://x/2</link></item>
            <item><title>Nothing</title><description>body</description></item>
            </channel></rss>"#;
        let a = parse_feed(rss, "http://x/feed").unwrap();
        let b = parse_feed(rss, "http://x/feed").unwrap();
        assert_eq!(a.items[0].key, "g-1");
        assert_eq!(a.items[1].key, "http://x/2");
        assert!(a.items[2].key.starts_with("sha256:"));
        assert_eq!(a, b, "keys are stable across parses");
    }

    proptest::proptest! {
        /// On any text: no panic, the result is its own canonical form,
        /// and no tracking parameter is left in the query.
        #[test]
        fn canonical_links_are_stable(
            link in "(https?://[a-z]{1,5}/)?[a-zé?&=#_]{0,12}(\\?((utm_[a-z]{0,3}|fbclid|id|q|)(=[a-z?#]{0,3})?&?){0,4})?(#[a-z?&=_]{0,6})?"
        ) {
            let once = super::canonical_link(&link);
            proptest::prop_assert_eq!(super::canonical_link(&once), once.clone());
            let before_fragment = once.split('#').next().unwrap_or_default();
            if let Some((_, query)) = before_fragment.split_once('?') {
                for param in query.split('&') {
                    let name = param.split('=').next().unwrap_or_default();
                    proptest::prop_assert!(!name.starts_with("utm_") && name != "fbclid", "{once}");
                }
            }
        }
    }

    #[test]
    fn tracking_parameters_change_neither_key_nor_link() {
        let feed = |tag: &str| {
            format!(
                r#"<rss version="2.0"><channel><title>T</title>
                <item><title>Link only</title><link>http://x/2?id=5&amp;utm_source={tag}&amp;fbclid={tag}</link></item>
                <item><guid>http://x/3?utm_source=g</guid><title>Guid</title><link>http://x/3?utm_source={tag}</link></item>
                </channel></rss>"#
            )
        };
        let a = parse_feed(feed("a").as_bytes(), "http://x/feed").unwrap();
        let b = parse_feed(feed("b").as_bytes(), "http://x/feed").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.items[0].key, "http://x/2?id=5");
        assert_eq!(a.items[0].link.as_deref(), Some("http://x/2?id=5"));
        // A guid is the feed's own name for the item and is kept as written.
        assert_eq!(a.items[1].key, "http://x/3?utm_source=g");
        assert_eq!(a.items[1].link.as_deref(), Some("http://x/3"));
    }

    #[test]
    fn rss_without_version_is_read() {
        let rss = br#"<rss><channel><title>T</title><item><title>A</title><guid>a</guid></item></channel></rss>"#;
        assert_eq!(parse_feed(rss, "x").unwrap().items.len(), 1);
        let rss = br#"<rss version="2.01"><channel><title>T</title><item><title>A</title><guid>a</guid></item></channel></rss>"#;
        assert_eq!(parse_feed(rss, "x").unwrap().items.len(), 1);
    }

    #[test]
    fn declarations_that_crashed_the_parser_are_defused() {
        // A second declaration naming another encoding, in mid-document.
        let mut doubled = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><rss version=\"2.0\"><channel><title>T</title>\
            <item><guid>a</guid><title>Z\xfcrich <?xml version=\"1.0\" encoding=\"UTF-8\"?>talks</title></item>"
            .to_vec();
        doubled.extend_from_slice(
            b"<!-- <?xml version=\"1.0\" encoding=\"UTF-16\"?> --></channel></rss>",
        );
        let feed = parse_feed(&doubled, "x").unwrap();
        assert_eq!(feed.items[0].title, "Z\u{fc}rich talks");
        assert!(defuse_declarations(&doubled).is_some());
        // UTF-16, both byte orders, with a byte order mark or without.
        let rss = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><rss version=\"2.0\"><channel><title>T</title>\
                   <item><guid>a</guid><title>Z\u{fc}rich</title></item></channel></rss>";
        let units: Vec<u16> = rss.encode_utf16().collect();
        let be: Vec<u8> = units.iter().flat_map(|u| u.to_be_bytes()).collect();
        let le: Vec<u8> = units.iter().flat_map(|u| u.to_le_bytes()).collect();
        for body in [
            [&[0xFE, 0xFF][..], &be].concat(),
            be,
            [&[0xFF, 0xFE][..], &le].concat(),
            le,
        ] {
            let feed = parse_feed(&body, "x").unwrap();
            assert_eq!(feed.items[0].title, "Z\u{fc}rich");
        }
        // The leading declaration still decides the encoding.
        let latin1 =
            b"\n<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><rss version=\"2.0\"><channel>\
            <item><guid>a</guid><title>Z\xfcrich</title></item></channel></rss>";
        // It is decoded here, and its declaration no longer names it.
        let decoded = defuse_declarations(latin1).expect("a Latin-1 document is decoded");
        let decoded = String::from_utf8(decoded).expect("UTF-8");
        assert!(
            decoded.starts_with("<?xml version=\"1.0\"?><rss"),
            "{decoded}"
        );
        assert!(decoded.contains("Z\u{fc}rich"), "{decoded}");
        let padded = [
            &b"\n\n<?xml version=\"1.0\"                              encoding='ISO-8859-1'  standalone=\"yes\" ?>"[..],
            &latin1[1..],
        ]
        .concat();
        let feed = parse_feed(&padded, "x").unwrap();
        assert_eq!(feed.items[0].title, "Z\u{fc}rich");
        assert_eq!(
            parse_feed(latin1, "x").unwrap().items[0].title,
            "Z\u{fc}rich"
        );
    }

    #[test]
    fn documents_in_other_encodings_are_decoded_before_parsing() {
        let feed = |declaration: &[u8], title: &[u8]| {
            let mut body = declaration.to_vec();
            body.extend_from_slice(b"<rss version=\"2.0\"><channel><item><guid>a</guid><title>");
            body.extend_from_slice(title);
            body.extend_from_slice(b"</title></item></channel></rss>");
            body
        };
        let title = |body: &[u8]| match parse_feed(body, "x") {
            Ok(feed) => feed.items[0].title.clone(),
            Err(e) => panic!("{e}"),
        };
        // A Latin-1 byte within the first 64 bytes made quick-xml, which
        // decodes those as UTF-8 before it reads the declaration, fail.
        let short = feed(
            b"<?xml version='1.0' encoding='iso-8859-1'?><!-- \xfc -->",
            b"Z\xfcrich",
        );
        assert!(find(&short, b"\xfc").is_some_and(|at| at < 64));
        assert_eq!(title(&short), "Z\u{fc}rich");
        let cyrillic = feed(
            b"<?xml version=\"1.0\" encoding=\"windows-1251\"?>",
            b"\xcc\xee\xf1\xea\xe2\xe0",
        );
        assert_eq!(
            title(&cyrillic),
            "\u{41c}\u{43e}\u{441}\u{43a}\u{432}\u{430}"
        );
        let koi8 = feed(
            b"<?xml version=\"1.0\" encoding=\"KOI8-R\"?>",
            b"\xeb\xc9\xc5\xd7",
        );
        assert_eq!(title(&koi8), "\u{41a}\u{438}\u{435}\u{432}");
        let japanese = feed(
            b"<?xml version=\"1.0\" encoding=\"Shift_JIS\"?>",
            b"\x93\x8c\x8b\x9e",
        );
        assert_eq!(title(&japanese), "\u{6771}\u{4eac}");
        // A byte order mark says UTF-8 whatever the declaration says.
        let bom = [
            &b"\xEF\xBB\xBF"[..],
            &feed(
                b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>",
                "Zürich".as_bytes(),
            ),
        ]
        .concat();
        assert_eq!(title(&bom), "Z\u{fc}rich");
        // UTF-8 documents, and labels nobody knows, are left as they are.
        let utf8 = feed(
            b"<?xml version=\"1.0\" encoding=\"utf-8\"?>",
            "Zürich".as_bytes(),
        );
        assert_eq!(defuse_declarations(&utf8), None);
        assert_eq!(title(&utf8), "Z\u{fc}rich");
        let unknown = feed(b"<?xml version=\"1.0\" encoding=\"klingon\"?>", b"Kronos");
        assert_eq!(defuse_declarations(&unknown), None);
        assert_eq!(title(&unknown), "Kronos");
    }

    #[test]
    fn a_broken_utf8_byte_cannot_make_a_declaration() {
        // `<?xm\xAEl … encoding="ISO-8859-1"?>` within the first 64 bytes:
        // quick-xml's decoder drops the byte that is not UTF-8, and what is
        // left is a declaration it then switches encoding for, too late.
        let body =
            include_bytes!("../tests/fixtures/fuzz/feed/dropped-byte-makes-a-declaration.xml");
        assert!(find(body, b"<?xm\xael").is_some_and(|at| at < 64));
        let crashed = parse_guarded(body, None).unwrap_err();
        assert!(crashed.cause.starts_with(PARSER_CRASHED), "{crashed}");
        let repaired = defuse_declarations(body).expect("broken UTF-8 is replaced");
        assert!(std::str::from_utf8(&repaired).is_ok());
        assert!(parse_guarded(&repaired, None).is_ok());
        if let Err(e) = parse_feed(body, "x") {
            assert!(!e.cause.starts_with(PARSER_CRASHED), "{e}");
        }
    }

    #[test]
    fn the_served_charset_counts_only_where_the_document_says_nothing() {
        let rss = |declaration: &[u8], title: &[u8]| {
            [
                declaration,
                b"<rss version=\"2.0\"><channel><item><guid>a</guid><title>",
                title,
                b"</title></item></channel></rss>",
            ]
            .concat()
        };
        let title = |body: &[u8], charset| match parse_feed_as(body, "x", charset) {
            Ok(feed) => feed.items[0].title.clone(),
            Err(e) => panic!("{e}"),
        };
        // No label: the charset decides, without it the byte is replaced.
        let latin1 = rss(b"<?xml version=\"1.0\"?>", b"Z\xfcrich");
        assert_eq!(title(&latin1, Some("iso-8859-1")), "Z\u{fc}rich");
        assert_eq!(title(&latin1, None), "Z\u{fffd}rich");
        let bare = rss(b"", b"Z\xfcrich");
        assert_eq!(title(&bare, Some("windows-1252")), "Z\u{fc}rich");
        // A document that is valid UTF-8 stays UTF-8, whatever the server says.
        let utf8 = rss(b"", "Zürich".as_bytes());
        assert_eq!(title(&utf8, Some("iso-8859-1")), "Z\u{fc}rich");
        // The document's own label wins over the server's charset.
        let cyrillic = rss(
            b"<?xml version=\"1.0\" encoding=\"windows-1251\"?>",
            b"\xcc\xee\xf1\xea\xe2\xe0",
        );
        assert_eq!(
            title(&cyrillic, Some("iso-8859-1")),
            "\u{41c}\u{43e}\u{441}\u{43a}\u{432}\u{430}"
        );
        // A charset nobody knows is ignored.
        assert_eq!(title(&latin1, Some("x-unknown")), "Z\u{fffd}rich");
    }

    #[test]
    fn a_repair_that_lengthens_the_declaration_is_defused() {
        // An `<rss` inside the declaration: patching its version pushes the
        // declaration's end past what quick-xml can still act on.
        let body =
            include_bytes!("../tests/fixtures/fuzz/feed/rss-version-patch-inside-declaration.xml");
        let patched = patch_rss_version(body).expect("there is an <rss to patch");
        let crashed = parse_guarded(&patched, None).unwrap_err();
        assert!(crashed.cause.starts_with(PARSER_CRASHED), "{crashed}");
        assert!(crashed.cause.contains("set_encoding"), "{crashed}");
        let defused = defuse_declarations(&patched).expect("the declaration is shortened");
        assert!(matches!(parse_guarded(&defused, None), Ok(Err(_))));
        let e = parse_feed(body, "x").unwrap_err();
        assert!(e.cause.contains("no <rss>, <feed>"), "{e}");
    }

    #[test]
    fn errors_name_the_cause() {
        let e = parse_feed(b"<html><body>hi</body></html>", "x").unwrap_err();
        assert!(e.to_string().contains("HTML page"), "{e}");
        let e = parse_feed(b"\x00\xff\xfe garbage", "x").unwrap_err();
        assert!(e.to_string().starts_with("not a readable feed"), "{e}");
        let e = parse_feed(b"<rss version=\"2.0\"><channel><item><title>x", "x").unwrap_err();
        assert!(e.to_string().contains("not a readable feed"), "{e}");
    }

    #[test]
    fn atom_and_json_feed() {
        let atom = br#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>urn:a</id><updated>2024-10-13T20:00:00Z</updated>
<entry><id>urn:e1</id><title type="html">EU &lt;b&gt;summit&lt;/b&gt;</title><updated>2024-10-13T20:00:00Z</updated>
<link href="/e1"/><content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Leaders <em>meet</em>.</p></div></content></entry></feed>"#;
        let feed = parse_feed(atom, "https://example.org/atom.xml").unwrap();
        let item = &feed.items[0];
        assert_eq!(item.key, "urn:e1");
        assert_eq!(item.content, "Leaders meet.");
        assert_eq!(item.link.as_deref(), Some("https://example.org/e1"));
        assert!(item.published.is_some());
        let json = br#"{"version":"https://jsonfeed.org/version/1.1","title":"J","items":[{"id":"1","title":"Hi","content_html":"<p>x</p>"}]}"#;
        assert_eq!(parse_feed(json, "x").unwrap().items[0].content, "x");
    }
}
