//! HTML → plain text, for the titles and bodies of feed items.
//!
//! A real HTML parser, scraper (html5ever), builds the tree a browser would,
//! and the visible text is read off it: scripts and styles dropped, block
//! elements on their own lines, whitespace collapsed as the text is
//! gathered ([`Collapsed`]). This module never fetches and knows nothing
//! about feeds.

use scraper::{Html, Node};

/// Turns an HTML fragment into readable plain text: entities decoded, scripts
/// and styles dropped, block elements on their own lines, whitespace collapsed.
pub fn html_to_text(html: &str) -> String {
    if !html.contains(['<', '&']) {
        return collapse_whitespace(html);
    }
    tree_html_to_text(html)
}

/// Elements whose text is never shown to a reader.
fn is_hidden(name: &str) -> bool {
    matches!(
        name,
        "script" | "style" | "noscript" | "template" | "head" | "iframe" | "object" | "svg"
    )
}

/// Elements that break the flow of text.
fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "div"
            | "br"
            | "li"
            | "ul"
            | "ol"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "tr"
            | "table"
            | "blockquote"
            | "section"
            | "article"
            | "header"
            | "footer"
            | "pre"
            | "hr"
            | "figure"
            | "figcaption"
            | "dd"
            | "dt"
            | "dl"
            | "aside"
            | "nav"
            | "main"
            | "address"
            | "caption"
    )
}

/// The text of `html` read off the tree the full HTML parser builds.
fn tree_html_to_text(html: &str) -> String {
    let fragment = Html::parse_fragment(html);
    let mut text = Collapsed::with_capacity(html.len());
    let mut stack = vec![(fragment.tree.root(), false)];
    // Iterative walk: hostile markup can nest arbitrarily deep.
    while let Some((node, leaving)) = stack.pop() {
        match node.value() {
            Node::Text(chunk) if !leaving => text.push_str(chunk),
            Node::Element(element) => {
                let name = element.name();
                if is_hidden(name) {
                    continue;
                }
                let block = is_block(name);
                let cell = matches!(name, "td" | "th");
                if leaving {
                    if block {
                        text.line_break();
                    } else if cell {
                        text.space();
                    }
                    continue;
                }
                if block {
                    text.line_break();
                }
                stack.push((node, true));
                let children: Vec<_> = node.children().collect();
                stack.extend(children.into_iter().rev().map(|c| (c, false)));
            }
            Node::Document | Node::Fragment if !leaving => {
                let children: Vec<_> = node.children().collect();
                stack.extend(children.into_iter().rev().map(|c| (c, false)));
            }
            _ => {}
        }
    }
    text.finish()
}

/// Runs of spaces become one space; runs of line breaks become one newline.
pub(super) fn collapse_whitespace(text: &str) -> String {
    let mut collapsed = Collapsed::with_capacity(text.len());
    collapsed.push_str(text);
    collapsed.finish()
}

/// Plain text under construction, whitespace collapsed as it arrives: a run
/// of whitespace becomes one space, or one newline when it holds a line
/// break (`\n` or `\r`); control characters are dropped, and so is
/// whitespace at either end. Whitespace is what `char::is_whitespace` says
/// (the no-break space included).
struct Collapsed {
    /// Built as bytes so that ASCII is copied without encoding; only whole
    /// characters of `str`s and ASCII whitespace are ever pushed.
    out: Vec<u8>,
    /// Whitespace owed before the next visible character: 0 (none), b' ' or
    /// b'\n' (a line break wins over spaces in the same run).
    pending: u8,
}

impl Collapsed {
    fn with_capacity(capacity: usize) -> Collapsed {
        Collapsed {
            out: Vec::with_capacity(capacity),
            pending: 0,
        }
    }

    fn push_str(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            match b {
                b'!'..=b'~' => {
                    // A run of printable ASCII with single spaces inside —
                    // most of any text — needs no change: copied whole.
                    let start = i;
                    i += 1;
                    loop {
                        match bytes.get(i) {
                            Some(b'!'..=b'~') => i += 1,
                            Some(b' ') if matches!(bytes.get(i + 1), Some(b'!'..=b'~')) => i += 2,
                            _ => break,
                        }
                    }
                    self.flush_pending();
                    self.out.extend_from_slice(&bytes[start..i]);
                }
                b'\n' | b'\r' => {
                    self.line_break();
                    i += 1;
                }
                b' ' | b'\t' | 0x0B | 0x0C => {
                    self.space();
                    i += 1;
                }
                0x00..=0x1F | 0x7F => i += 1,
                _ => {
                    let Some(c) = text[i..].chars().next() else {
                        break;
                    };
                    let end = i + c.len_utf8();
                    if c.is_whitespace() {
                        self.space();
                    } else if !c.is_control() {
                        self.flush_pending();
                        self.out.extend_from_slice(&bytes[i..end]);
                    }
                    i = end;
                }
            }
        }
    }

    fn line_break(&mut self) {
        self.pending = b'\n';
    }

    fn space(&mut self) {
        if self.pending != b'\n' {
            self.pending = b' ';
        }
    }

    fn flush_pending(&mut self) {
        if self.pending != 0 {
            if !self.out.is_empty() {
                self.out.push(self.pending);
            }
            self.pending = 0;
        }
    }

    fn finish(self) -> String {
        String::from_utf8(self.out)
            .expect("whole characters of strs and ASCII whitespace make valid UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn html_becomes_text() {
        let html = "<p>North&nbsp;Korea &amp; <b>Russia</b></p><script>alert(1)</script><style>p{}</style>\
                    <ul><li>one</li><li>two</li></ul>Tail &lt;tag&gt;";
        assert_eq!(
            html_to_text(html),
            "North Korea & Russia\none\ntwo\nTail <tag>"
        );
        assert_eq!(html_to_text("plain   text\n\n here"), "plain text\nhere");
        assert_eq!(
            html_to_text("<table><tr><td>a</td><td>b</td></tr></table>"),
            "a b"
        );
        assert_eq!(
            html_to_text("<p>unclosed <i>tags <b>everywhere"),
            "unclosed tags everywhere"
        );
    }

    #[test]
    fn deeply_nested_html_does_not_overflow() {
        let html = "<div>".repeat(3_000) + "deep" + &"</div>".repeat(3_000);
        assert_eq!(html_to_text(&html), "deep");
    }

    /// The whitespace rules as first written, a character at a time: what
    /// [`Collapsed`] must reproduce.
    fn reference_collapse(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut pending: Option<char> = None;
        for c in text.chars() {
            if c.is_whitespace() || c == '\u{a0}' {
                let kind = if c == '\n' || c == '\r' { '\n' } else { ' ' };
                pending = match pending {
                    Some('\n') => Some('\n'),
                    _ => Some(kind),
                };
            } else if c.is_control() {
                continue;
            } else {
                if let Some(p) = pending.take() {
                    if !out.is_empty() {
                        out.push(p);
                    }
                }
                out.push(c);
            }
        }
        out
    }

    /// Text pieces: ASCII, whitespace of every kind, controls, accents
    /// precomposed and combining, ligatures, fullwidth forms, typography.
    #[rustfmt::skip]
    const TEXT: &[&str] = &[
        "North", " Korea", "  ", " ", "\n", "\r\n", "\r", "\t", "\u{b}", "\u{c}", "\u{a0}",
        "\u{85}", "\u{2003}", "\u{3000}", "\u{1}", "\u{7f}", "\u{9b}", "é", "e\u{301}", "Łódź",
        "ﬁnance", "ＺＥＬＥＮＳＫＹＹ", "’", "—", "“quoted”", "½", "İ", "\u{200b}", "😀", "x",
        "<", "<3", "< p", "&", "& ", "a&b", "AT&T", "Q&A;", "&&",
    ];

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 5_000,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn collapsing_matches_the_character_rules(
            pieces in prop::collection::vec(prop::sample::select(TEXT), 0..30)
        ) {
            let text = pieces.concat();
            prop_assert_eq!(collapse_whitespace(&text), reference_collapse(&text));
            // Fed in pieces, as the walks do, it gives the same text.
            let mut collapsed = Collapsed::with_capacity(0);
            for piece in &pieces {
                collapsed.push_str(piece);
            }
            prop_assert_eq!(collapsed.finish(), reference_collapse(&text));
        }
    }
}
