//! HTML → text: any markup becomes plain text without control characters
//! other than newlines, and without leading, trailing or doubled whitespace;
//! and the one-pass reader agrees with the HTML parser wherever it answers.

#![no_main]

use libfuzzer_sys::fuzz_target;
use newswatch::feed::{html_to_text, html_to_text_both_ways};
use newswatch::text::NormText;

fuzz_target!(|data: &[u8]| {
    let html = String::from_utf8_lossy(data);
    let text = html_to_text(&html);
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "control character in {text:?}"
    );
    assert_eq!(text.trim(), text, "untrimmed text");
    assert!(
        !text.contains("  ") && !text.contains("\n\n"),
        "whitespace run in {text:?}"
    );
    let _ = NormText::new(text);
    // The one-pass reader, where it accepts the input, says what the HTML
    // parser's tree says.
    let (fast, tree) = html_to_text_both_ways(&html);
    if let Some(fast) = fast {
        assert_eq!(fast, tree, "one-pass reader and tree walk differ");
    }
});
