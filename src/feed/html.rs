//! HTML → plain text, for the titles and bodies of feed items.
//!
//! The reference is a real HTML parser: scraper (html5ever) builds the tree a
//! browser would, and the visible text is read off it — scripts and styles
//! dropped, block elements on their own lines, whitespace collapsed. That is
//! the largest single cost of parsing a feed, and most feed HTML is plain:
//! paragraphs, links, emphasis, lists, figures, a quote, an embedded
//! `<script>`. For that HTML, [`html_to_text`] first tries a single pass
//! ([`simple_html_to_text`]) that follows the tokenizer and tree-construction
//! rules of the HTML standard for a known set of elements, keeping its own
//! copy of the parser's stack of open elements. Whenever the markup needs a
//! rule it does not model — tables, forms, foreign content, mis-nested
//! formatting elements, unknown elements or character references, a
//! declaration — it gives up and the full parser runs. The two agree on every
//! input the fast pass accepts (property tests in this module check it).
//! This module never fetches and knows nothing about feeds.

use scraper::{Html, Node};

/// Turns an HTML fragment into readable plain text: entities decoded, scripts
/// and styles dropped, block elements on their own lines, whitespace collapsed.
pub fn html_to_text(html: &str) -> String {
    if !html.contains(['<', '&']) {
        return collapse_whitespace(html);
    }
    simple_html_to_text(html).unwrap_or_else(|| tree_html_to_text(html))
}

/// Both ways of turning `html` into text: the one-pass reader's (`None`
/// where it gives up) and the tree walk's. For the differential fuzz target:
/// where the first answers, the two must agree.
#[doc(hidden)]
pub fn html_to_text_both_ways(html: &str) -> (Option<String>, String) {
    (simple_html_to_text(html), tree_html_to_text(html))
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

    fn push_char(&mut self, c: char) {
        self.push_str(c.encode_utf8(&mut [0; 4]));
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

// ---------------------------------------------------------------------------
// The fast pass
// ---------------------------------------------------------------------------

/// The text of `html` in one pass, or `None` when the markup needs a parsing
/// rule this pass does not model (the caller then runs the full parser).
///
/// It reads `html` as the HTML tokenizer does (tags and their attributes,
/// comments, character references, the raw text of `<script>` and
/// `<style>`) and keeps `OpenElements`, a copy of the tree builder's stack
/// of open elements, applying the "in body" rules for the elements of
/// [`ELEMENTS`]: which start tags close an open `<p>`, `<li>` or heading,
/// which end tags are ignored, which close more than one element. Text is
/// then emitted in document order, as the tree walk would find it. Rules
/// that move nodes or rebuild formatting elements (tables, mis-nested `<b>`,
/// a `<p>` closed with formatting elements open inside it) are exactly where
/// this pass gives up.
fn simple_html_to_text(html: &str) -> Option<String> {
    // The tokenizer drops a leading byte order mark and the tree builder
    // every NUL: rare enough to leave to the parser.
    if html.starts_with('\u{feff}') || html.contains('\0') {
        return None;
    }
    let bytes = html.as_bytes();
    let mut text = Collapsed::with_capacity(html.len());
    let mut open = OpenElements::default();
    let mut i = 0;
    loop {
        let next = bytes[i..]
            .iter()
            .position(|&b| b == b'<' || b == b'&')
            .map_or(bytes.len(), |n| i + n);
        text.push_str(&html[i..next]);
        i = next;
        i = match bytes.get(i) {
            None => break,
            Some(b'&') => character_reference(html, i, &mut text)?,
            Some(_) => markup(html, i, &mut text, &mut open)?,
        };
    }
    Some(text.finish())
}

/// Reads the markup that starts with the `<` at `at`; returns where the text
/// after it starts.
fn markup(html: &str, at: usize, text: &mut Collapsed, open: &mut OpenElements) -> Option<usize> {
    let bytes = html.as_bytes();
    match bytes.get(at + 1) {
        Some(b) if b.is_ascii_alphabetic() => {
            let tag = scan_tag(bytes, at + 1)?;
            let element = Element::named(&bytes[tag.name])?;
            open.start_tag(element, text)?;
            if element.role == Role::RawText {
                return skip_raw_text(bytes, tag.end, element);
            }
            Some(tag.end)
        }
        Some(b'/') => {
            // `</>` is dropped and `</` before anything but a letter opens a
            // bogus comment: left to the parser.
            if !bytes.get(at + 2)?.is_ascii_alphabetic() {
                return None;
            }
            let tag = scan_tag(bytes, at + 2)?;
            let element = Element::named(&bytes[tag.name])?;
            open.end_tag(element, text)?;
            Some(tag.end)
        }
        Some(b'!') => skip_comment(bytes, at),
        // A processing instruction is a bogus comment; leave it to the parser.
        Some(b'?') => None,
        // Before anything else (a space, a digit, the end) `<` is text.
        _ => {
            text.push_str("<");
            Some(at + 1)
        }
    }
}

/// A start or end tag as the tokenizer reads it.
struct ScannedTag {
    /// Byte range of the tag name.
    name: std::ops::Range<usize>,
    /// Where the text after the tag's `>` starts.
    end: usize,
}

/// HTML whitespace (`\r` included: the tokenizer reads it as `\n`).
fn is_html_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0C | b'\r' | b' ')
}

/// Reads a tag whose name starts at `name_start` up to its closing `>`,
/// stepping over attributes (quoted values may hold `>`). `None` when the
/// input ends inside the tag, which the tokenizer treats specially.
fn scan_tag(bytes: &[u8], name_start: usize) -> Option<ScannedTag> {
    let mut i = name_start;
    while bytes
        .get(i)
        .is_some_and(|&b| !is_html_space(b) && b != b'/' && b != b'>')
    {
        i += 1;
    }
    let name = name_start..i;
    let done = |end| Some(ScannedTag { name, end });
    loop {
        // Before an attribute name (after a quoted value or a stray `/` too).
        while bytes.get(i).is_some_and(|&b| is_html_space(b)) {
            i += 1;
        }
        match *bytes.get(i)? {
            b'>' => return done(i + 1),
            b'/' => {
                i += 1;
                if *bytes.get(i)? == b'>' {
                    return done(i + 1);
                }
                continue;
            }
            _ => {}
        }
        // The attribute name: its first character is taken whatever it is
        // (even `=`), then up to whitespace, `/`, `>` or `=`.
        i += 1;
        while bytes
            .get(i)
            .is_some_and(|&b| !is_html_space(b) && !matches!(b, b'/' | b'>' | b'='))
        {
            i += 1;
        }
        while bytes.get(i).is_some_and(|&b| is_html_space(b)) {
            i += 1;
        }
        if *bytes.get(i)? != b'=' {
            // `/`, `>` or the next attribute's name.
            continue;
        }
        i += 1;
        while bytes.get(i).is_some_and(|&b| is_html_space(b)) {
            i += 1;
        }
        match *bytes.get(i)? {
            quote @ (b'"' | b'\'') => {
                let len = bytes[i + 1..].iter().position(|&b| b == quote)?;
                i += len + 2;
            }
            // `name=>`: an empty value, and the tag ends.
            b'>' => return done(i + 1),
            _ => {
                while bytes
                    .get(i)
                    .is_some_and(|&b| !is_html_space(b) && b != b'>')
                {
                    i += 1;
                }
            }
        }
    }
}

/// Skips the raw text of a `<script>`, `<style>`, `<noscript>` or `<iframe>`
/// starting at `from`, up to and including its end tag.
fn skip_raw_text(bytes: &[u8], from: usize, element: Element) -> Option<usize> {
    let name = element.name.as_bytes();
    let mut i = from;
    loop {
        let close = i + bytes[i..].windows(2).position(|w| w == b"</")?;
        let name_end = close + 2 + name.len();
        if bytes
            .get(close + 2..name_end)
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
        {
            match *bytes.get(name_end)? {
                b'>' => {
                    // `<!--` in a script opens the escaped states, in which
                    // `<script>` nests: left to the parser.
                    if element.name == "script"
                        && bytes[from..close].windows(4).any(|w| w == b"<!--")
                    {
                        return None;
                    }
                    return Some(name_end + 1);
                }
                // An end tag with attributes or a `/`: left to the parser.
                b if is_html_space(b) || b == b'/' => return None,
                // `</scripts` and the like are text.
                _ => {}
            }
        }
        i = close + 2;
    }
}

/// Skips a comment starting at the `<` at `at`; `None` for other `<!`
/// markup (doctype, CDATA, bogus comments) and for an unclosed comment.
fn skip_comment(bytes: &[u8], at: usize) -> Option<usize> {
    let body = at + 4;
    if !bytes[at..].starts_with(b"<!--") {
        return None;
    }
    // `<!-->` and `<!--->` are whole (empty) comments.
    if bytes[body..].starts_with(b">") {
        return Some(body + 1);
    }
    if bytes[body..].starts_with(b"->") {
        return Some(body + 2);
    }
    // Otherwise the first `-->` or `--!>` ends it.
    let mut i = body;
    loop {
        let dashes = i + bytes[i..].windows(2).position(|w| w == b"--")?;
        match bytes.get(dashes + 2..) {
            Some([b'>', ..]) => return Some(dashes + 3),
            Some([b'!', b'>', ..]) => return Some(dashes + 4),
            _ => i = dashes + 1,
        }
    }
}

/// Reads the character reference (or bare `&`) at `at` into `text`;
/// returns where the text after it starts. `None` for references whose
/// meaning needs the whole table of named references.
fn character_reference(html: &str, at: usize, text: &mut Collapsed) -> Option<usize> {
    let bytes = html.as_bytes();
    match bytes.get(at + 1) {
        Some(b'#') => {
            let (digits, radix) = match bytes.get(at + 2) {
                Some(b'x' | b'X') => (at + 3, 16),
                _ => (at + 2, 10),
            };
            let mut i = digits;
            let mut value: u32 = 0;
            while let Some(digit) = bytes.get(i).and_then(|&b| char::from(b).to_digit(radix)) {
                value = value * radix + digit;
                if value > 0x10FFFF {
                    return None;
                }
                i += 1;
            }
            if i == digits {
                return None;
            }
            // The `;` is optional (its absence is only a parse error).
            if bytes.get(i) == Some(&b';') {
                i += 1;
            }
            text.push_char(plain_code_point(value)?);
            Some(i)
        }
        Some(b) if b.is_ascii_alphanumeric() => {
            let start = at + 1;
            let end = bytes[start..]
                .iter()
                .position(|b| !b.is_ascii_alphanumeric())
                .map_or(bytes.len(), |n| start + n);
            let name = &html[start..end];
            if bytes.get(end) == Some(&b';') {
                text.push_char(named_reference(name)?);
                return Some(end + 1);
            }
            // Without `;` only the legacy names (`&amp`, `&copy`, …) are
            // references, and they match as prefixes (`&copy2024`).
            if LEGACY_NAMES.iter().any(|legacy| name.starts_with(legacy)) {
                return None;
            }
            text.push_str(&html[at..end]);
            Some(end)
        }
        // `& `, `&&`, `&` at the end: the ampersand is text.
        _ => {
            text.push_str("&");
            Some(at + 1)
        }
    }
}

/// The character a numeric reference stands for, when the tokenizer takes
/// it as it is; `None` for those it replaces (NUL, surrogates, C1 controls,
/// out of range) and for other controls and noncharacters.
fn plain_code_point(value: u32) -> Option<char> {
    match value {
        0x09 | 0x0A | 0x0C | 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFDCF | 0xFDF0..=0x10FFFF
            if value & 0xFFFE != 0xFFFE =>
        {
            char::from_u32(value)
        }
        _ => None,
    }
}

/// The names of the HTML standard's named references that also match
/// without a semicolon.
const LEGACY_NAMES: [&str; 106] = [
    "AElig", "AMP", "Aacute", "Acirc", "Agrave", "Aring", "Atilde", "Auml", "COPY", "Ccedil",
    "ETH", "Eacute", "Ecirc", "Egrave", "Euml", "GT", "Iacute", "Icirc", "Igrave", "Iuml", "LT",
    "Ntilde", "Oacute", "Ocirc", "Ograve", "Oslash", "Otilde", "Ouml", "QUOT", "REG", "THORN",
    "Uacute", "Ucirc", "Ugrave", "Uuml", "Yacute", "aacute", "acirc", "acute", "aelig", "agrave",
    "amp", "aring", "atilde", "auml", "brvbar", "ccedil", "cedil", "cent", "copy", "curren", "deg",
    "divide", "eacute", "ecirc", "egrave", "eth", "euml", "frac12", "frac14", "frac34", "gt",
    "iacute", "icirc", "iexcl", "igrave", "iquest", "iuml", "laquo", "lt", "macr", "micro",
    "middot", "nbsp", "not", "ntilde", "oacute", "ocirc", "ograve", "ordf", "ordm", "oslash",
    "otilde", "ouml", "para", "plusmn", "pound", "quot", "raquo", "reg", "sect", "shy", "sup1",
    "sup2", "sup3", "szlig", "thorn", "times", "uacute", "ucirc", "ugrave", "uml", "uuml",
    "yacute", "yen", "yuml",
];

/// The character of `&name;` for the named references common in news (the
/// Latin-1 ones and typographic punctuation); `None` for the other two
/// thousand, which the full parser decodes.
fn named_reference(name: &str) -> Option<char> {
    let c = match name {
        "quot" | "QUOT" => '"',
        "amp" | "AMP" => '&',
        "apos" => '\'',
        "lt" | "LT" => '<',
        "gt" | "GT" => '>',
        "nbsp" => '\u{a0}',
        "iexcl" => '¡',
        "cent" => '¢',
        "pound" => '£',
        "curren" => '¤',
        "yen" => '¥',
        "brvbar" => '¦',
        "sect" => '§',
        "uml" => '¨',
        "copy" | "COPY" => '©',
        "ordf" => 'ª',
        "laquo" => '«',
        "not" => '¬',
        "shy" => '\u{ad}',
        "reg" | "REG" => '®',
        "macr" => '¯',
        "deg" => '°',
        "plusmn" => '±',
        "sup2" => '²',
        "sup3" => '³',
        "acute" => '´',
        "micro" => 'µ',
        "para" => '¶',
        "middot" => '·',
        "cedil" => '¸',
        "sup1" => '¹',
        "ordm" => 'º',
        "raquo" => '»',
        "frac14" => '¼',
        "frac12" => '½',
        "frac34" => '¾',
        "iquest" => '¿',
        "Agrave" => 'À',
        "Aacute" => 'Á',
        "Acirc" => 'Â',
        "Atilde" => 'Ã',
        "Auml" => 'Ä',
        "Aring" => 'Å',
        "AElig" => 'Æ',
        "Ccedil" => 'Ç',
        "Egrave" => 'È',
        "Eacute" => 'É',
        "Ecirc" => 'Ê',
        "Euml" => 'Ë',
        "Igrave" => 'Ì',
        "Iacute" => 'Í',
        "Icirc" => 'Î',
        "Iuml" => 'Ï',
        "ETH" => 'Ð',
        "Ntilde" => 'Ñ',
        "Ograve" => 'Ò',
        "Oacute" => 'Ó',
        "Ocirc" => 'Ô',
        "Otilde" => 'Õ',
        "Ouml" => 'Ö',
        "times" => '×',
        "Oslash" => 'Ø',
        "Ugrave" => 'Ù',
        "Uacute" => 'Ú',
        "Ucirc" => 'Û',
        "Uuml" => 'Ü',
        "Yacute" => 'Ý',
        "THORN" => 'Þ',
        "szlig" => 'ß',
        "agrave" => 'à',
        "aacute" => 'á',
        "acirc" => 'â',
        "atilde" => 'ã',
        "auml" => 'ä',
        "aring" => 'å',
        "aelig" => 'æ',
        "ccedil" => 'ç',
        "egrave" => 'è',
        "eacute" => 'é',
        "ecirc" => 'ê',
        "euml" => 'ë',
        "igrave" => 'ì',
        "iacute" => 'í',
        "icirc" => 'î',
        "iuml" => 'ï',
        "eth" => 'ð',
        "ntilde" => 'ñ',
        "ograve" => 'ò',
        "oacute" => 'ó',
        "ocirc" => 'ô',
        "otilde" => 'õ',
        "ouml" => 'ö',
        "divide" => '÷',
        "oslash" => 'ø',
        "ugrave" => 'ù',
        "uacute" => 'ú',
        "ucirc" => 'û',
        "uuml" => 'ü',
        "yacute" => 'ý',
        "thorn" => 'þ',
        "yuml" => 'ÿ',
        "OElig" => 'Œ',
        "oelig" => 'œ',
        "Scaron" => 'Š',
        "scaron" => 'š',
        "Yuml" => 'Ÿ',
        "fnof" => 'ƒ',
        "circ" => 'ˆ',
        "tilde" => '˜',
        "ensp" => '\u{2002}',
        "emsp" => '\u{2003}',
        "thinsp" => '\u{2009}',
        "zwnj" => '\u{200c}',
        "zwj" => '\u{200d}',
        "lrm" => '\u{200e}',
        "rlm" => '\u{200f}',
        "ndash" => '–',
        "mdash" => '—',
        "lsquo" => '‘',
        "rsquo" => '’',
        "sbquo" => '‚',
        "ldquo" => '“',
        "rdquo" => '”',
        "bdquo" => '„',
        "dagger" => '†',
        "Dagger" => '‡',
        "bull" => '•',
        "hellip" => '…',
        "permil" => '‰',
        "prime" => '′',
        "Prime" => '″',
        "lsaquo" => '‹',
        "rsaquo" => '›',
        "euro" => '€',
        "trade" => '™',
        "minus" => '−',
        _ => return None,
    };
    Some(c)
}

/// What the tree builder does with an element's start and end tags, for the
/// elements the fast pass knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Closes an open `<p>`, then opens (`div`, `ul`, `blockquote`, `pre`,
    /// `p` itself, …). Its end tag closes it and everything opened after it.
    Block,
    /// `h1`–`h6`: a block that also closes a heading that is the current node.
    Heading,
    /// `li`: closes an open `<li>` (unless a list or other special element
    /// lies between), then acts as a block.
    ListItem,
    /// `dd`, `dt`: the same with each other.
    DefinitionItem,
    /// `a`, `b`, `em`, …: the tree builder's "formatting elements", which it
    /// re-creates when they are closed out of order.
    Formatting,
    /// `span`, `cite`, `time`, …: any other element, closed by its end tag
    /// unless a special element is open above it.
    Ordinary,
    /// `br`, `img`, `hr`, …: no content, never stays open.
    Void,
    /// `script`, `style`, `noscript`, `iframe`: raw text up to the end tag,
    /// never shown.
    RawText,
}

/// The elements the fast pass knows, sorted by name: name, role, and
/// whether the standard counts it as "special" (a special element stops the
/// search for an element to close). Roles and categories are those of the
/// "in body" insertion mode; `dialog` and `search` are closed like blocks
/// but are not special.
const ELEMENTS: [(&str, Role, bool); 81] = [
    ("a", Role::Formatting, false),
    ("abbr", Role::Ordinary, false),
    ("acronym", Role::Ordinary, false),
    ("address", Role::Block, true),
    ("article", Role::Block, true),
    ("aside", Role::Block, true),
    ("audio", Role::Ordinary, false),
    ("b", Role::Formatting, false),
    ("bdi", Role::Ordinary, false),
    ("bdo", Role::Ordinary, false),
    ("big", Role::Formatting, false),
    ("blockquote", Role::Block, true),
    ("br", Role::Void, true),
    ("center", Role::Block, true),
    ("cite", Role::Ordinary, false),
    ("code", Role::Formatting, false),
    ("data", Role::Ordinary, false),
    ("dd", Role::DefinitionItem, true),
    ("del", Role::Ordinary, false),
    ("details", Role::Block, true),
    ("dfn", Role::Ordinary, false),
    ("dialog", Role::Block, false),
    ("dir", Role::Block, true),
    ("div", Role::Block, true),
    ("dl", Role::Block, true),
    ("dt", Role::DefinitionItem, true),
    ("em", Role::Formatting, false),
    ("fieldset", Role::Block, true),
    ("figcaption", Role::Block, true),
    ("figure", Role::Block, true),
    ("font", Role::Formatting, false),
    ("footer", Role::Block, true),
    ("h1", Role::Heading, true),
    ("h2", Role::Heading, true),
    ("h3", Role::Heading, true),
    ("h4", Role::Heading, true),
    ("h5", Role::Heading, true),
    ("h6", Role::Heading, true),
    ("header", Role::Block, true),
    ("hgroup", Role::Block, true),
    ("hr", Role::Void, true),
    ("i", Role::Formatting, false),
    ("iframe", Role::RawText, true),
    ("img", Role::Void, true),
    ("ins", Role::Ordinary, false),
    ("kbd", Role::Ordinary, false),
    ("label", Role::Ordinary, false),
    ("li", Role::ListItem, true),
    ("main", Role::Block, true),
    ("mark", Role::Ordinary, false),
    ("menu", Role::Block, true),
    ("nav", Role::Block, true),
    ("noscript", Role::RawText, true),
    ("ol", Role::Block, true),
    ("p", Role::Block, true),
    ("param", Role::Void, true),
    ("picture", Role::Ordinary, false),
    ("pre", Role::Block, true),
    ("q", Role::Ordinary, false),
    ("s", Role::Formatting, false),
    ("samp", Role::Ordinary, false),
    ("script", Role::RawText, true),
    ("search", Role::Block, false),
    ("section", Role::Block, true),
    ("small", Role::Formatting, false),
    ("source", Role::Void, true),
    ("span", Role::Ordinary, false),
    ("strike", Role::Formatting, false),
    ("strong", Role::Formatting, false),
    ("style", Role::RawText, true),
    ("sub", Role::Ordinary, false),
    ("summary", Role::Block, true),
    ("sup", Role::Ordinary, false),
    ("time", Role::Ordinary, false),
    ("track", Role::Void, true),
    ("tt", Role::Formatting, false),
    ("u", Role::Formatting, false),
    ("ul", Role::Block, true),
    ("var", Role::Ordinary, false),
    ("video", Role::Ordinary, false),
    ("wbr", Role::Void, true),
];

/// An element the fast pass knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Element {
    name: &'static str,
    role: Role,
    special: bool,
    /// Whether the text walk puts it on lines of its own ([`is_block`]).
    block: bool,
}

impl Element {
    /// The element of a tag name as written (any case), if the fast pass
    /// knows it.
    fn named(name: &[u8]) -> Option<Element> {
        let mut lower = [0u8; 10];
        let lower = lower.get_mut(..name.len())?;
        for (l, n) in lower.iter_mut().zip(name) {
            *l = n.to_ascii_lowercase();
        }
        let at = ELEMENTS
            .binary_search_by(|(known, _, _)| known.as_bytes().cmp(lower))
            .ok()?;
        let (name, role, special) = ELEMENTS[at];
        Some(Element {
            name,
            role,
            special,
            block: is_block(name),
        })
    }

    fn is(self, name: &str) -> bool {
        self.name == name
    }
}

/// The fast pass's copy of the tree builder's stack of open elements (above
/// the fragment's `<html>` root). The fast pass gives up before the two
/// could differ: it never pops a formatting element except with its own end
/// tag, so the builder's list of active formatting elements only ever holds
/// elements that are open, and "reconstructing" it never adds any.
#[derive(Default)]
struct OpenElements {
    stack: Vec<Element>,
}

impl OpenElements {
    fn start_tag(&mut self, element: Element, text: &mut Collapsed) -> Option<()> {
        match element.role {
            Role::Block => {
                self.close_p(text)?;
                self.push(element, text);
            }
            Role::Heading => {
                self.close_p(text)?;
                if self.stack.last().is_some_and(|e| e.role == Role::Heading) {
                    self.truncate(self.stack.len() - 1, text)?;
                }
                self.push(element, text);
            }
            Role::ListItem | Role::DefinitionItem => {
                // The nearest open item of the same kind is closed, unless a
                // special element other than address, div or p is nearer.
                for at in (0..self.stack.len()).rev() {
                    let open = self.stack[at];
                    if open.role == element.role {
                        self.truncate(at, text)?;
                        break;
                    }
                    if open.special && !open.is("address") && !open.is("div") && !open.is("p") {
                        break;
                    }
                }
                self.close_p(text)?;
                self.push(element, text);
            }
            Role::Formatting => {
                // A second `<a>` inside an open one is "adopted": left to the parser.
                if element.is("a") && self.stack.iter().any(|e| e.is("a")) {
                    return None;
                }
                self.push(element, text);
            }
            Role::Ordinary => self.push(element, text),
            Role::Void => {
                if element.is("hr") {
                    self.close_p(text)?;
                }
                if element.block {
                    text.line_break();
                }
            }
            Role::RawText => {}
        }
        Some(())
    }

    fn end_tag(&mut self, element: Element, text: &mut Collapsed) -> Option<()> {
        match element.role {
            Role::Block if element.is("p") => {
                if self.last_position(|e| e.is("p")).is_none() {
                    // `</p>` without an open `<p>` makes an empty paragraph.
                    text.line_break();
                }
                self.close_p(text)?;
            }
            Role::Block | Role::DefinitionItem => {
                if let Some(at) = self.last_position(|e| e == element) {
                    self.truncate(at, text)?;
                }
            }
            Role::Heading => {
                if let Some(at) = self.last_position(|e| e.role == Role::Heading) {
                    self.truncate(at, text)?;
                }
            }
            Role::ListItem => {
                // Only an item of the innermost list can be closed.
                let at = self
                    .stack
                    .iter()
                    .rposition(|e| e.role == Role::ListItem || e.is("ol") || e.is("ul"));
                if let Some(at) = at.filter(|&at| self.stack[at].role == Role::ListItem) {
                    self.truncate(at, text)?;
                }
            }
            Role::Formatting => {
                if self.stack.last() == Some(&element) {
                    self.stack.pop();
                } else if self.stack.contains(&element) {
                    // Mis-nested formatting: the adoption agency algorithm.
                    return None;
                }
            }
            Role::Ordinary => {
                // Closed if open above the nearest special element, else ignored.
                let at = self.stack.iter().rposition(|&e| e == element || e.special);
                if let Some(at) = at.filter(|&at| self.stack[at] == element) {
                    self.truncate(at, text)?;
                }
            }
            // `</br>` is read as `<br>`; other void and raw-text end tags
            // close nothing.
            Role::Void => {
                if element.is("br") {
                    text.line_break();
                }
            }
            Role::RawText => {}
        }
        Some(())
    }

    fn push(&mut self, element: Element, text: &mut Collapsed) {
        if element.block {
            text.line_break();
        }
        self.stack.push(element);
    }

    fn last_position(&self, matches: impl Fn(Element) -> bool) -> Option<usize> {
        self.stack.iter().rposition(|&e| matches(e))
    }

    /// Closes an open `<p>` and everything opened after it.
    fn close_p(&mut self, text: &mut Collapsed) -> Option<()> {
        match self.last_position(|e| e.is("p")) {
            Some(at) => self.truncate(at, text),
            None => Some(()),
        }
    }

    /// Closes the elements from `at` up; `None` if one is a formatting
    /// element (the tree builder would re-create it later).
    fn truncate(&mut self, at: usize, text: &mut Collapsed) -> Option<()> {
        while self.stack.len() > at {
            let element = self.stack.pop()?;
            if element.role == Role::Formatting {
                return None;
            }
            if element.block {
                text.line_break();
            }
        }
        Some(())
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
                if let Some(p) = pending.take()
                    && !out.is_empty()
                {
                    out.push(p);
                }
                out.push(c);
            }
        }
        out
    }

    /// Asserts that the fast pass, when it accepts `html`, gives the text of
    /// the full parser's tree; returns whether it accepted it.
    fn fast_agrees(html: &str) -> bool {
        let tree = tree_html_to_text(html);
        match simple_html_to_text(html) {
            Some(fast) => {
                assert_eq!(fast, tree, "fast pass and tree differ on {html:?}");
                true
            }
            None => false,
        }
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

    /// Character references, well- and ill-formed.
    #[rustfmt::skip]
    const REFERENCES: &[&str] = &[
        "&amp;", "&amp", "&ampx", "&AMP;", "&lt;", "&lt", "&gt;", "&quot;", "&apos;", "&nbsp;",
        "&nbsp", "&mdash;", "&ndash;", "&hellip;", "&rsquo;", "&ldquo;", "&euro;", "&eacute;",
        "&Eacute;", "&copy2024", "&copy;", "&notit;", "&notin;", "&not", "&unknown;", "&xyz",
        "&T", "&#8217;", "&#8217", "&#x2014;", "&#X41;", "&#65;", "&#0065;", "&#0;", "&#128;",
        "&#150;", "&#13;", "&#10;", "&#9;", "&#1;", "&#x110000;", "&#xD800;", "&#xFFFE;",
        "&#xFDD0;", "&#x1F600;", "&#", "&#;", "&#x;", "&#x", "&#a", "&#99999999999;",
    ];

    /// Comments, declarations and other `<` markup.
    #[rustfmt::skip]
    const OTHER_MARKUP: &[&str] = &[
        "<!-- c -->", "<!-->", "<!--->", "<!---->", "<!-- a --!>", "<!-- a --!-->", "<!--",
        "<!-- <!-- -->", "<!--<!-->", "<!-- a -- b -->", "<!DOCTYPE html>", "<![CDATA[x]]>",
        "<?pi x?>", "</>", "</ x>", "</3>", "<!x>",
    ];

    /// Raw text elements, closed and not.
    #[rustfmt::skip]
    const RAW: &[&str] = &[
        "<script>x</script>", "<script>if (a<b) {}</script>", "<script><!--</script>",
        "<script><!-- <script> --></script>", "<SCRIPT>x</Script>", "<script>a</scripts>b</script>",
        "<script>a</script x>", "<script>a</script/>", "<style>p{}</style>", "<style>",
        "<noscript><b>n</b></noscript>", "<iframe>f</iframe>", "<script>", "</script>",
        "<script async src=\"x.js\" charset=\"utf-8\"></script>",
    ];

    /// Element names: all the fast pass knows and some it leaves to the parser.
    #[rustfmt::skip]
    const NAMES: &[&str] = &[
        "p", "P", "div", "span", "a", "A", "b", "i", "em", "strong", "u", "s", "font", "small",
        "code", "br", "hr", "img", "wbr", "source", "li", "ul", "ol", "dl", "dd", "dt", "h1",
        "h2", "H3", "h6", "blockquote", "figure", "figcaption", "pre", "section", "article",
        "header", "footer", "nav", "aside", "main", "address", "center", "details", "summary",
        "dialog", "search", "menu", "dir", "fieldset", "hgroup", "cite", "q", "time", "sup",
        "sub", "abbr", "mark", "picture", "video", "label", "ins", "del", "table", "tr", "td",
        "th", "tbody", "caption", "svg", "math", "template", "head", "body", "html", "title",
        "nobr", "image", "listing", "xmp", "textarea", "select", "option", "button", "form",
        "object", "ruby", "rt", "x-custom", "paragraph",
    ];

    #[rustfmt::skip]
    const ATTRIBUTES: &[&str] = &[
        "", " class=\"x\"", " href='a>b'", " title=\"a > b\"", " a=b", " a=", " a", " =x",
        " a=\"x\"b=y", " /", "/", " x=\"unclosed", " a='q\"'", "\n\tid = 'i' ",
        " href=\"https://example.com/?a=1&amp;b=2\"",
    ];

    fn tag() -> impl Strategy<Value = String> {
        (
            prop::sample::select(NAMES),
            prop::sample::select(ATTRIBUTES),
            0..4u8,
        )
            .prop_map(|(name, attributes, kind)| match kind {
                0 | 1 => format!("<{name}{attributes}>"),
                2 => format!("</{name}>"),
                _ => format!("<{name}{attributes}/>"),
            })
    }

    /// HTML-ish soup: any piece may follow any other.
    fn soup() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            4 => tag(),
            3 => prop::sample::select(TEXT).prop_map(str::to_string),
            2 => prop::sample::select(REFERENCES).prop_map(str::to_string),
            1 => prop::sample::select(OTHER_MARKUP).prop_map(str::to_string),
            1 => prop::sample::select(RAW).prop_map(str::to_string),
        ];
        prop::collection::vec(piece, 0..25).prop_map(|pieces| pieces.concat())
    }

    /// Markup the fast pass takes on: well-formed and ill-formed nesting of
    /// the elements it knows, with short texts between the tags so that a
    /// misplaced line break shows.
    fn plain_markup() -> impl Strategy<Value = String> {
        #[rustfmt::skip]
        const KNOWN: &[&str] = &[
            "p", "div", "span", "a", "b", "i", "br", "hr", "li", "ul", "ol", "dl", "dd", "dt",
            "h1", "h2", "blockquote", "pre", "cite", "center", "dialog", "figure", "section",
        ];
        let tag = (prop::sample::select(KNOWN), 0..3u8).prop_map(|(name, kind)| match kind {
            0 | 1 => format!("<{name}>"),
            _ => format!("</{name}>"),
        });
        let piece = prop_oneof![
            4 => tag,
            2 => prop::sample::select(&["x", "y", " ", "z"][..]).prop_map(str::to_string),
            1 => prop::sample::select(&TEXT[..31]).prop_map(str::to_string),
            1 => prop::sample::select(&REFERENCES[..19]).prop_map(str::to_string),
        ];
        prop::collection::vec(piece, 0..30).prop_map(|pieces| pieces.concat())
    }

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

        #[test]
        fn fast_pass_agrees_with_the_parser_on_soup(html in soup()) {
            fast_agrees(&html);
        }

        #[test]
        fn fast_pass_agrees_with_the_parser_on_plain_markup(html in plain_markup()) {
            fast_agrees(&html);
        }

        #[test]
        fn fast_pass_agrees_with_the_parser_on_any_string(html in any::<String>()) {
            fast_agrees(&html);
        }
    }

    #[test]
    fn fast_pass_takes_news_markup() {
        let article = "<p>The <a href=\"https://x.example/a?b=1&amp;c=2\">minister</a> said&#8217;s \
            &ldquo;no&rdquo; &mdash; <em>twice</em>.<br/>Then <strong>left</strong>.</p>\n\
            <figure class=\"image\"><img src=\"x.jpg\" alt=\"a > b\" loading=\"lazy\"/>\
            <figcaption>Caption <span class=\"credit\">Photo: A&nbsp;B</span></figcaption></figure>\
            <blockquote class=\"twitter-tweet\"><p lang=\"en\" dir=\"ltr\">Tweet</p>&mdash; Name \
            (@name) <a href=\"https://twitter.com/x\">November 25, 2026</a></blockquote>\
            <script async src=\"https://platform.twitter.com/widgets.js\" charset=\"utf-8\"></script>\
            <!-- ad --><div class=\"related\"><h3>Related</h3><ul><li><a href=\"/1\">One</a></li>\
            <li>Two<li>Three</ul></div><p>Unclosed <p>paragraphs &amp; AT&T<div>block</div></p>";
        assert!(fast_agrees(article));
        assert!(fast_agrees("<p>a<div>b</div>c</p>d"));
        assert!(fast_agrees("<li><div><li>a</li>b</div>c</li>d"));
        assert!(fast_agrees("<h1>a<h2>b</h2>c</h1>d"));
        assert!(fast_agrees("<dl><dt>a<dd>b<dt>c</dl>d"));
        assert!(fast_agrees("x</p>y</div>z</br>w"));
    }

    #[test]
    fn fast_pass_leaves_other_markup_to_the_parser() {
        for html in [
            "<table><tr><td>a</td></tr>b</table>",
            "<b>1<p>2</b>3</p>",
            "<p><b>x<div>y</div></b></p>",
            "<a href=1>x<a href=2>y</a>",
            "<head><title>t</title></head>",
            "<svg><text>t</text></svg>",
            "&notit;",
            "&copy2024",
            "<script><!--<script></script>--></script>after",
            "\u{feff}<p>bom</p>",
            "a\0b<p>",
        ] {
            assert!(!fast_agrees(html), "{html:?}");
        }
    }

    #[test]
    fn every_named_reference_decodes_as_the_parser_does() {
        for name in LEGACY_NAMES {
            assert!(named_reference(name).is_some(), "{name}");
            assert!(fast_agrees(&format!("<p>&{name};x</p>")));
            // Legacy names also match without `;`, as prefixes.
            assert!(!fast_agrees(&format!("&{name}x")));
        }
        for name in [
            "apos", "OElig", "oelig", "Scaron", "scaron", "Yuml", "fnof", "circ", "tilde", "ensp",
            "emsp", "thinsp", "zwnj", "zwj", "lrm", "rlm", "ndash", "mdash", "lsquo", "rsquo",
            "sbquo", "ldquo", "rdquo", "bdquo", "dagger", "Dagger", "bull", "hellip", "permil",
            "prime", "Prime", "lsaquo", "rsaquo", "euro", "trade", "minus",
        ] {
            assert!(fast_agrees(&format!("a&{name};b")), "{name}");
            // Not a legacy name: without `;` it is text.
            assert!(fast_agrees(&format!("a&{name} b")), "{name}");
        }
    }

    #[test]
    fn element_table_is_sorted_and_complete() {
        assert!(ELEMENTS.windows(2).all(|w| w[0].0 < w[1].0));
        for (name, role, _) in ELEMENTS {
            let element = Element::named(name.as_bytes()).expect("a known element");
            assert_eq!((element.name, element.role), (name, role));
            assert_eq!(
                Element::named(name.to_uppercase().as_bytes()),
                Some(element)
            );
        }
        assert_eq!(Element::named(b"paragraph"), None);
        assert_eq!(Element::named(b"blockquotes"), None);
    }
}
