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
    match c {
        // Latin-1 and Latin Extended-A/B letters (accented European names)
        // and General Punctuation (curly quotes, dashes, special spaces) are
        // most of the non-ASCII text in news; answering for them here spares
        // a search of the Unicode tables. A unit test checks every character
        // against the definition below.
        'À'..='Ö' | 'Ø'..='ö' | 'ø'..='ɏ' => true,
        '\u{2000}'..='\u{206F}' => false,
        _ => c.is_alphanumeric() || is_combining_mark(c),
    }
}

/// What a byte says about words, for [`next_word`]: ASCII letters and digits
/// are word bytes, other ASCII bytes are gaps, and a byte of a multi-byte
/// character has to be decoded to know.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ByteClass {
    Gap,
    Word,
    NonAscii,
}

const BYTE_CLASS: [ByteClass; 256] = {
    let mut table = [ByteClass::NonAscii; 256];
    let mut b = 0;
    while b < 128 {
        table[b] = if (b as u8).is_ascii_alphanumeric() {
            ByteClass::Word
        } else {
            ByteClass::Gap
        };
        b += 1;
    }
    table
};

/// Appends the folded form of one word to `out`: NFKC/NFKD compatibility
/// mapping, lower case, accents removed, and a few letters that do not
/// decompose (ß, ø, æ, œ, ł, đ, ı) spelled out in ASCII.
pub fn fold_word_into(word: &str, out: &mut String) {
    if word.is_ascii() {
        fold_ascii_word_into(word, out);
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

/// The folded form of an ASCII word: the word in lower case. Copied whole and
/// lowered in place, which is what makes English text cheap to fold.
fn fold_ascii_word_into(word: &str, out: &mut String) {
    let start = out.len();
    out.push_str(word);
    out[start..].make_ascii_lowercase();
}

/// The next word of `text` at or after byte `from`: its byte range and
/// whether it is all ASCII.
///
/// ASCII bytes are classified by table ([`BYTE_CLASS`]); only other
/// characters are decoded and asked [`is_word_char`]. That gives the same
/// words as asking [`is_word_char`] of every character, since an ASCII
/// character is alphanumeric exactly when it is an ASCII letter or digit and
/// is never a combining mark.
fn next_word(text: &str, from: usize) -> Option<(Range<usize>, bool)> {
    let bytes = text.as_bytes();
    let mut i = from;
    let start = loop {
        let &b = bytes.get(i)?;
        match BYTE_CLASS[usize::from(b)] {
            ByteClass::Word => break i,
            ByteClass::Gap => i += 1,
            ByteClass::NonAscii => {
                let c = text[i..].chars().next()?;
                if is_word_char(c) {
                    break i;
                }
                i += c.len_utf8();
            }
        }
    };
    let mut ascii = true;
    while let Some(&b) = bytes.get(i) {
        match BYTE_CLASS[usize::from(b)] {
            ByteClass::Word => i += 1,
            ByteClass::Gap => break,
            ByteClass::NonAscii => {
                let Some(c) = text[i..].chars().next() else {
                    break;
                };
                if !is_word_char(c) {
                    break;
                }
                ascii = false;
                i += c.len_utf8();
            }
        }
    }
    Some((start..i, ascii))
}

/// Splits `text` into word byte ranges (runs of letters, digits and combining marks).
pub fn word_ranges(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut from = 0;
    std::iter::from_fn(move || {
        let (range, _) = next_word(text, from)?;
        from = range.end;
        Some(range)
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
        let bytes = original.as_bytes();
        // Built as bytes in one pass: an ASCII word is lowered as it is
        // copied; a word with other characters is folded into `scratch`.
        let mut folded: Vec<u8> = Vec::with_capacity(original.len() + 2);
        let mut tokens = Vec::with_capacity(original.len() / 6);
        let mut scratch = String::new();
        folded.push(b' ');
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            let folded_start = folded.len();
            let range = match BYTE_CLASS[usize::from(b)] {
                ByteClass::Gap => {
                    i += 1;
                    continue;
                }
                ByteClass::Word => {
                    let start = i;
                    // Setting 0x20 lowers an ASCII letter and leaves a digit
                    // as it is.
                    while let Some(&b) = bytes
                        .get(i)
                        .filter(|&&b| BYTE_CLASS[usize::from(b)] == ByteClass::Word)
                    {
                        folded.push(b | 0x20);
                        i += 1;
                    }
                    if bytes
                        .get(i)
                        .is_none_or(|&b| BYTE_CLASS[usize::from(b)] == ByteClass::Gap)
                    {
                        folded.push(b' ');
                        tokens.push(Token {
                            start: start as u32,
                            end: i as u32,
                            folded_start: folded_start as u32,
                        });
                        continue;
                    }
                    // A non-ASCII character follows: whether it goes on
                    // with the word is for `next_word` to say.
                    folded.truncate(folded_start);
                    match next_word(&original, start) {
                        Some((range, _)) => range,
                        None => break,
                    }
                }
                ByteClass::NonAscii => match next_word(&original, i) {
                    Some((range, _)) => range,
                    None => break,
                },
            };
            i = range.end;
            let word = &original[range.clone()];
            if word.is_ascii() {
                folded.extend(word.bytes().map(|b| b | 0x20));
            } else {
                scratch.clear();
                fold_word_into(word, &mut scratch);
                if scratch.is_empty() {
                    continue;
                }
                folded.extend_from_slice(scratch.as_bytes());
            }
            folded.push(b' ');
            tokens.push(Token {
                start: range.start as u32,
                end: range.end as u32,
                folded_start: folded_start as u32,
            });
        }
        let folded = String::from_utf8(folded)
            .expect("folded text is whole UTF-8 words and ASCII spaces: valid UTF-8");
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

    /// The folded forms of tokens `first..=last`, joined by single spaces.
    pub fn folded_words(&self, first: usize, last: usize) -> &str {
        let (start, _) = self.folded_bounds(first);
        let (_, end) = self.folded_bounds(last);
        &self.folded[start..end]
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
    // Move outwards to a word boundary so the snippet does not begin or end
    // mid-word: a space, or the start or end of the text, within 16 bytes.
    if start > 0 {
        // Only the last 16 bytes before `start` can hold a close enough space.
        let from = floor(start.saturating_sub(16));
        if let Some((space, c)) = text[from..start]
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            && start - (from + space) < 16
        {
            start = from + space + c.len_utf8();
        } else if start < 16 {
            start = 0;
        }
    }
    if end < text.len() {
        match text[end..].find(char::is_whitespace) {
            Some(space) if space < 16 => end += space,
            None if text.len() - end < 16 => end = text.len(),
            _ => {}
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
    use proptest::prelude::*;

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
        let s = snippet(text, at..at + 6, 12);
        assert_eq!(s, "…alongside Russian troops in Ukraine,…");
        // It runs on to the end of the text where that is closer than a cut.
        assert_eq!(
            snippet(text, at..at + 6, 20),
            "…fight alongside Russian troops in Ukraine, he said."
        );
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

    proptest::proptest! {
        /// Whatever the text, range and context: no panic, the hit is in the
        /// snippet (whitespace collapsed, as the snippet shows it), and an
        /// ellipsis marks each end where the text goes on.
        #[test]
        fn a_snippet_shows_its_hit_and_marks_its_cuts(
            text in "[a-zé \u{a0}\u{2003}\t\n.,—]{0,120}",
            a in 0usize..130,
            b in 0usize..130,
            context in 0usize..60,
        ) {
            let boundary = |i: usize| {
                let mut i = i.min(text.len());
                while !text.is_char_boundary(i) {
                    i -= 1;
                }
                i
            };
            let (start, end) = (boundary(a.min(b)), boundary(a.max(b)));
            let shown = snippet(&text, start..end, context);
            let collapse = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
            let hit = collapse(&text[start..end]);
            proptest::prop_assert!(collapse(&shown).contains(&hit), "{shown:?} lacks {hit:?}");
            let body = shown.trim_start_matches('…').trim_end_matches('…');
            if !shown.starts_with('…') {
                proptest::prop_assert!(
                    collapse(&text).starts_with(&collapse(body)),
                    "{shown:?} is not the start of {text:?}"
                );
            }
            if !shown.ends_with('…') {
                proptest::prop_assert!(
                    collapse(&text).ends_with(&collapse(body)),
                    "{shown:?} is not the end of {text:?}"
                );
            }
        }
    }

    #[test]
    fn snippet_runs_to_a_close_start_or_end_of_the_text_rather_than_cut_a_word() {
        let title = "Foreign troops deployed near the border, officials said on Monday.";
        let at = title.find("troops").unwrap();
        assert_eq!(snippet(title, at..at + 6, 50), title);
        let at = title.find("Monday").unwrap();
        // "Foreign" starts 7 bytes before the cut: the snippet starts with it.
        assert_eq!(
            snippet(title, at..at + 6, at - 7),
            title,
            "no word cut at the start"
        );
        // Further than 16 bytes from either end, the cut stays and is marked.
        let long = "Unquestionably, troops deployed near the border overnight, officials said on Wednesdays";
        let at = long.find("border").unwrap();
        let s = snippet(long, at..at + 6, 20);
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
    }

    #[test]
    fn terminal_sanitizing_strips_escapes() {
        let hostile =
            "Breaking\u{1b}[2J\u{1b}]0;pwned\u{7} news\u{1b}]8;;http://x\u{1b}\\link\r\n\u{9b}31m!";
        assert_eq!(sanitize_terminal(hostile), "Breaking newslink  !");
        assert_eq!(sanitize_terminal("a\u{202e}b\u{0}c"), "abc");
    }

    #[test]
    fn word_char_shortcuts_match_the_unicode_definition() {
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            assert_eq!(
                is_word_char(c),
                c.is_alphanumeric() || is_combining_mark(c),
                "{c:?}"
            );
        }
    }

    /// Word ranges as first written, asking every character.
    fn reference_word_ranges(text: &str) -> Vec<Range<usize>> {
        let is_word = |c: char| c.is_alphanumeric() || is_combining_mark(c);
        let mut ranges = Vec::new();
        let mut chars = text.char_indices().peekable();
        while let Some((start, c)) = chars.next() {
            if !is_word(c) {
                continue;
            }
            let mut end = text.len();
            while let Some(&(i, c)) = chars.peek() {
                if !is_word(c) {
                    end = i;
                    break;
                }
                chars.next();
            }
            ranges.push(start..end);
        }
        ranges
    }

    /// Tokenizing and folding as first written, a character at a time: what
    /// [`NormText::new`] must reproduce.
    fn reference_norm_text(text: &str) -> NormText {
        let mut folded = String::from(" ");
        let mut tokens = Vec::new();
        for range in reference_word_ranges(text) {
            let folded_start = folded.len();
            let word = &text[range.clone()];
            if word.is_ascii() {
                folded.extend(word.chars().map(|c| c.to_ascii_lowercase()));
            } else {
                fold_word_into(word, &mut folded);
            }
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
            original: text.to_string(),
            folded,
            tokens,
        }
    }

    /// Pieces of text: ASCII words and punctuation, accents precomposed and
    /// combining (also opening a word), ligatures, fullwidth and other
    /// compatibility forms, letters that fold to two, other scripts.
    #[rustfmt::skip]
    const PIECES: &[&str] = &[
        "North", "korea", "US", "2024", " ", "  ", "-", "'", ".", ",", "\n", "\t", "_", "é",
        "É", "e\u{301}", "\u{301}", "\u{301}x", "Łódź", "Straße", "Ørsted", "ﬁ", "ﬀ", "Ǆ",
        "ＺＥＬＥＮＳＫＹＹ", "１２", "İ", "ı", "Ω", "Ѐ", "Київ", "東京", "한국", "ﷺ", "½", "²",
        "㎏", "\u{a0}", "\u{2019}", "\u{201c}", "\u{2014}", "\u{200b}", "\u{2060}", "😀", "þ",
        "\u{e9}\u{301}",
    ];

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 2_000,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn normalization_matches_the_character_rules(
            pieces in prop::collection::vec(prop::sample::select(PIECES), 0..30)
        ) {
            let text = pieces.concat();
            let fast = NormText::new(text.as_str());
            let reference = reference_norm_text(&text);
            prop_assert_eq!(fast.folded, reference.folded);
            prop_assert_eq!(fast.tokens, reference.tokens);
            prop_assert_eq!(
                word_ranges(&text).collect::<Vec<_>>(),
                reference_word_ranges(&text)
            );
            prop_assert_eq!(
                fold_words(&text),
                reference_word_ranges(&text)
                    .into_iter()
                    .filter_map(|r| {
                        let mut folded = String::new();
                        fold_word_into(&text[r], &mut folded);
                        (!folded.is_empty()).then_some(folded)
                    })
                    .collect::<Vec<_>>()
            );
        }

        #[test]
        fn normalization_of_any_string_matches(text in any::<String>()) {
            let fast = NormText::new(text.as_str());
            let reference = reference_norm_text(&text);
            prop_assert_eq!(fast.folded, reference.folded);
            prop_assert_eq!(fast.tokens, reference.tokens);
        }
    }
}
