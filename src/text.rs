//! Text normalization: the one place that decides what a "word" is.
//!
//! Rules, entities and snippets all agree on tokens because they all come from
//! here. A [`NormText`] keeps the original text untouched, a list of tokens with
//! byte offsets into that original, and a *folded* copy — the tokens after
//! Unicode NFKC, case folding and diacritic folding, joined by single spaces and
//! framed by a space on each side (`" north korea is sending "`). Matchers search
//! the folded copy; offsets map every hit back to the original so a snippet can
//! show what the publisher wrote. This module never decides what matches.

use std::ops::Range;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// One word of the original text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// Byte range of the word in the original text.
    pub start: u32,
    pub end: u32,
    /// Byte offset of the word's folded form in [`NormText::folded`].
    pub folded_start: u32,
}

/// A text together with its folded token stream.
#[derive(Debug, Clone, Default)]
pub struct NormText {
    pub original: String,
    /// Folded tokens joined by single spaces, with a leading and trailing space.
    pub folded: String,
    pub tokens: Vec<Token>,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || is_combining_mark(c)
}

/// Appends the folded form of one word to `out`: NFKC/NFKD compatibility
/// mapping, lower case, accents removed, and a few letters that do not
/// decompose (ß, ø, æ, œ, ł, đ, ı) spelled out in ASCII.
pub fn fold_word_into(word: &str, out: &mut String) {
    if word.is_ascii() {
        out.extend(word.bytes().map(|b| b.to_ascii_lowercase() as char));
        return;
    }
    for c in word.nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        for lc in c.to_lowercase() {
            match lc {
                'ß' => out.push_str("ss"),
                'ø' => out.push('o'),
                'æ' => out.push_str("ae"),
                'œ' => out.push_str("oe"),
                'ł' => out.push('l'),
                'đ' => out.push('d'),
                'ı' => out.push('i'),
                'þ' => out.push_str("th"),
                // Compatibility decomposition can produce punctuation (½ → 1⁄2);
                // a folded token holds letters and digits only.
                c if c.is_alphanumeric() => out.push(c),
                _ => {}
            }
        }
    }
}

/// Splits `text` into word byte ranges (runs of letters, digits and combining marks).
pub fn word_ranges(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut chars = text.char_indices().peekable();
    std::iter::from_fn(move || {
        let start = loop {
            let (i, c) = chars.next()?;
            if is_word_char(c) {
                break i;
            }
        };
        let mut end = text.len();
        while let Some(&(i, c)) = chars.peek() {
            if !is_word_char(c) {
                end = i;
                break;
            }
            chars.next();
        }
        Some(start..end)
    })
}

/// Folds a free-standing string (a query word, an alias) into its folded tokens.
pub fn fold_words(text: &str) -> Vec<String> {
    word_ranges(text)
        .filter_map(|r| {
            let mut folded = String::new();
            fold_word_into(&text[r], &mut folded);
            (!folded.is_empty()).then_some(folded)
        })
        .collect()
}

impl NormText {
    /// Tokenizes and folds `text`.
    pub fn new(text: impl Into<String>) -> NormText {
        let original = text.into();
        let mut folded = String::with_capacity(original.len() + 2);
        let mut tokens = Vec::with_capacity(original.len() / 6);
        folded.push(' ');
        for range in word_ranges(&original) {
            let folded_start = folded.len();
            fold_word_into(&original[range.clone()], &mut folded);
            if folded.len() == folded_start {
                continue;
            }
            folded.push(' ');
            tokens.push(Token {
                start: range.start as u32,
                end: range.end as u32,
                folded_start: folded_start as u32,
            });
        }
        NormText {
            original,
            folded,
            tokens,
        }
    }

    /// The token whose folded form contains folded byte offset `at`, if any.
    pub fn token_at_folded(&self, at: usize) -> Option<usize> {
        let idx = self
            .tokens
            .partition_point(|t| t.folded_start as usize <= at);
        idx.checked_sub(1)
    }

    /// Byte range in the original text covered by tokens `first..=last`.
    pub fn original_range(&self, first: usize, last: usize) -> Range<usize> {
        self.tokens[first].start as usize..self.tokens[last].end as usize
    }

    /// The folded form of token `i`.
    pub fn folded_token(&self, i: usize) -> &str {
        let (start, end) = self.folded_bounds(i);
        &self.folded[start..end]
    }

    /// The folded form of token `i` as bytes (no character-boundary checks).
    pub fn folded_token_bytes(&self, i: usize) -> &[u8] {
        let (start, end) = self.folded_bounds(i);
        &self.folded.as_bytes()[start..end]
    }

    /// The byte range of token `i` in [`NormText::folded`].
    pub fn folded_bounds(&self, i: usize) -> (usize, usize) {
        // Each token is followed by one space: it ends one byte before the
        // next token starts, or before the last byte.
        let start = self.tokens[i].folded_start as usize;
        let end = self
            .tokens
            .get(i + 1)
            .map_or(self.folded.len(), |t| t.folded_start as usize)
            - 1;
        (start, end)
    }
}

/// A short excerpt of `text` around `range`, on character boundaries, with
/// whitespace collapsed and `…` where it was cut.
pub fn snippet(text: &str, range: Range<usize>, context: usize) -> String {
    let floor = |mut i: usize| {
        i = i.min(text.len());
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let mut start = floor(range.start.saturating_sub(context));
    let mut end = floor(range.end.saturating_add(context));
    // Move outwards to a word boundary so the snippet does not begin mid-word.
    if start > 0 {
        // Only the last 16 bytes before `start` can hold a close enough space.
        let from = floor(start.saturating_sub(16));
        if let Some((space, c)) = text[from..start]
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
        {
            if start - (from + space) < 16 {
                start = from + space + c.len_utf8();
            }
        }
    }
    if end < text.len() {
        if let Some(space) = text[end..].find(char::is_whitespace) {
            if space < 16 {
                end += space;
            }
        }
    }
    let mut out = String::with_capacity(end - start + 8);
    if start > 0 {
        out.push('…');
    }
    let body = &text[start..end];
    let mut last_space = false;
    if body.is_ascii() {
        // The common case, a byte at a time (the same whitespace as
        // `char::is_whitespace` below: space and \t, \n, VT, FF, \r).
        let mut bytes = Vec::with_capacity(body.len());
        for &b in body.as_bytes() {
            if matches!(b, b' ' | b'\t'..=b'\r') {
                if !last_space {
                    bytes.push(b' ');
                }
                last_space = true;
            } else {
                bytes.push(b);
                last_space = false;
            }
        }
        out.push_str(std::str::from_utf8(&bytes).expect("ASCII stays ASCII"));
    } else {
        for c in body.chars() {
            if c.is_whitespace() {
                if !last_space {
                    out.push(' ');
                }
                last_space = true;
            } else {
                out.push(c);
                last_space = false;
            }
        }
    }
    let trimmed_len = out.trim_end().len();
    out.truncate(trimmed_len);
    if end < text.len() {
        out.push('…');
    }
    out
}

/// Removes control characters and terminal escape sequences (CSI, OSC, …) so
/// text from a feed can be printed to a terminal safely. Newlines and tabs
/// become spaces.
pub fn sanitize_terminal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape(&mut chars),
            // C1 control introducers (CSI, OSC, DCS, …) act like ESC sequences.
            '\u{9b}' => skip_until_final(&mut chars),
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            '\n' | '\t' | '\r' => out.push(' '),
            c if c.is_control() => {}
            // Bidirectional overrides can make a line read differently from what it is.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {}
            c => out.push(c),
        }
    }
    out
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

fn skip_escape(chars: &mut Chars<'_>) {
    match chars.next() {
        Some('[') => skip_until_final(chars),
        Some(']' | 'P' | 'X' | '^' | '_') => skip_string(chars),
        // Two-character sequences (ESC c, ESC 7, …) and charset selections.
        Some('(' | ')' | '*' | '+' | '#' | '%') => {
            chars.next();
        }
        _ => {}
    }
}

/// CSI: parameters and intermediates up to a final byte in `@`..=`~`.
fn skip_until_final(chars: &mut Chars<'_>) {
    for c in chars.by_ref() {
        if ('@'..='~').contains(&c) {
            break;
        }
    }
}

/// OSC/DCS/…: everything up to BEL or ST (ESC \ or U+009C).
fn skip_string(chars: &mut Chars<'_>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => break,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                break;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_accents_and_width() {
        assert_eq!(fold_words("Zelenskyy"), ["zelenskyy"]);
        assert_eq!(fold_words("Sélestat"), ["selestat"]);
        assert_eq!(fold_words("ＺＥＬＥＮＳＫＹＹ"), ["zelenskyy"]);
        assert_eq!(
            fold_words("Straße Łódź Ørsted"),
            ["strasse", "lodz", "orsted"]
        );
        // Decomposed accents stay inside the word.
        assert_eq!(fold_words("Se\u{301}lestat"), ["selestat"]);
        assert_eq!(fold_words("ﬁnance"), ["finance"]);
    }

    #[test]
    fn tokens_keep_original_offsets() {
        let text = "Moscow-Pyongyang ties: Russia’s “pact”";
        let norm = NormText::new(text);
        assert_eq!(norm.folded, " moscow pyongyang ties russia s pact ");
        let words: Vec<&str> = norm
            .tokens
            .iter()
            .map(|t| &text[t.start as usize..t.end as usize])
            .collect();
        assert_eq!(
            words,
            ["Moscow", "Pyongyang", "ties", "Russia", "s", "pact"]
        );
        assert_eq!(norm.folded_token(3), "russia");
        let at = norm.folded.find("russia").unwrap();
        assert_eq!(norm.token_at_folded(at), Some(3));
        assert_eq!(norm.token_at_folded(at + 3), Some(3));
        assert_eq!(norm.token_at_folded(0), None);
    }

    #[test]
    fn empty_and_punctuation_only_text() {
        assert_eq!(NormText::new("").folded, " ");
        assert!(NormText::new("… — !!").tokens.is_empty());
    }

    #[test]
    fn snippet_cuts_on_words_and_marks_cuts() {
        let text = "North Korea is sending its own men to fight alongside Russian troops in Ukraine, he said.";
        let at = text.find("troops").unwrap();
        let s = snippet(text, at..at + 6, 20);
        assert!(s.contains("Russian troops in"), "{s}");
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert_eq!(snippet("short", 0..5, 40), "short");
        // Multi-byte characters near the cut points never split.
        let text = "ééééééééééé troops ééééééééé";
        let at = text.find("troops").unwrap();
        let _ = snippet(text, at..at + 6, 3);
        // Multi-byte whitespace before the cut (no-break and em spaces).
        let text = "aaaa\u{a0}bbbb\u{2003}cccc troops dddd";
        let at = text.find("troops").unwrap();
        for context in 0..20 {
            let _ = snippet(text, at..at + 6, context);
        }
    }

    #[test]
    fn snippet_collapses_the_same_whitespace_in_ascii_and_other_text() {
        // Space, tab, newline, vertical tab, form feed and carriage return all
        // collapse to one space, whether or not the excerpt is pure ASCII.
        let ascii = "one\t\ttwo\n\u{b}\u{c}three\r\n troops  four";
        let at = ascii.find("troops").unwrap();
        assert_eq!(snippet(ascii, at..at + 6, 100), "one two three troops four");
        let wide = "één\t\ttwo\n\u{b}\u{c}three\r\n troops  four";
        let at = wide.find("troops").unwrap();
        assert_eq!(snippet(wide, at..at + 6, 100), "één two three troops four");
        // A space further back than 16 bytes is not a word boundary worth moving to.
        let text = "x abcdefghijklmnopqrstuvwxyz troops";
        let at = text.find("troops").unwrap();
        assert_eq!(snippet(text, at..at + 6, 10), "…rstuvwxyz troops");
    }

    #[test]
    fn terminal_sanitizing_strips_escapes() {
        let hostile =
            "Breaking\u{1b}[2J\u{1b}]0;pwned\u{7} news\u{1b}]8;;http://x\u{1b}\\link\r\n\u{9b}31m!";
        assert_eq!(sanitize_terminal(hostile), "Breaking newslink  !");
        assert_eq!(sanitize_terminal("a\u{202e}b\u{0}c"), "abc");
    }
}
