"""The Python side of the parse + normalize comparison (bench/run.sh).

Does to each corpus file what a feedparser-based monitor (rss2email,
feed2exec, ...) does to a fetched feed, plus the normalization newswatch
does, so both sides produce comparable output:

1. ``feedparser.parse(bytes)`` with its defaults (HTML sanitizing and
   relative-URI resolution on, as those tools use it);
2. for each entry, title, summary and the first content value turned into
   plain text with the standard library's ``html.parser`` (scripts and styles
   dropped, block elements on their own lines, whitespace collapsed), which
   is what newswatch's ``html_to_text`` does;
3. each text normalized the way newswatch folds it: NFKC, accents removed
   (NFKD without combining marks), ``casefold``, split into word tokens,
   joined by spaces.

Step 3 works on the whole text at once rather than word by word and keeps no
token offsets, which is less work than newswatch's ``NormText`` (it keeps
the original text, byte offsets per token, and the folded copy): the
comparison favours Python there.

File reading is outside the timed region; each file's results are dropped
before the next. ``cpu_s`` is the process's CPU time over the whole loop
(file reads from the page cache included), like newswatch's. Prints one JSON line per format, like
``bench_compare parse``.
"""

import json
import re
import sys
import time
import unicodedata
from html.parser import HTMLParser
from pathlib import Path

import feedparser

HIDDEN = {"script", "style", "noscript", "template", "head", "iframe", "object", "svg"}
BLOCK = {
    "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table",
    "blockquote", "section", "article", "header", "footer", "pre", "hr", "figure",
    "figcaption", "dd", "dt", "dl", "aside", "nav", "main", "address", "caption",
}
WORD = re.compile(r"[^\W_]+")
SPACES = re.compile(r"[^\S\n]+")
BREAKS = re.compile(r"\s*\n\s*")


class TextExtractor(HTMLParser):
    """Collects the visible text of an HTML fragment."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in HIDDEN:
            self.hidden += 1
        elif tag in BLOCK:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag in HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def html_to_text(html):
    if "<" not in html and "&" not in html:
        text = html
    else:
        parser = TextExtractor()
        parser.feed(html)
        parser.close()
        text = "".join(parser.parts)
    text = SPACES.sub(" ", text.replace("\xa0", " "))
    return BREAKS.sub("\n", text).strip()


def fold(text):
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():
        text = "".join(
            c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
        )
    return " " + " ".join(WORD.findall(text.casefold())) + " "


def main():
    corpus = Path(sys.argv[1])
    max_files = int(sys.argv[2]) if len(sys.argv) > 2 else None
    for fmt in ("rss", "atom"):
        files = sorted((corpus / fmt).glob("*.xml"))[:max_files]
        size = items = tokens = 0
        parse_s = normalize_s = 0.0
        cpu_start = time.process_time()
        for path in files:
            body = path.read_bytes()
            start = time.perf_counter()
            feed = feedparser.parse(body)
            parsed = time.perf_counter()
            for entry in feed.entries:
                title = html_to_text(entry.get("title", ""))
                summary = html_to_text(entry.get("summary", ""))
                content = entry.get("content")
                content = html_to_text(content[0].value) if content else ""
                for text in (title, summary, content):
                    tokens += fold(text).count(" ") - 1
            done = time.perf_counter()
            parse_s += parsed - start
            normalize_s += done - parsed
            size += len(body)
            items += len(feed.entries)
            if feed.bozo and not feed.entries:
                raise SystemExit(f"{path}: {feed.bozo_exception}")
        total = parse_s + normalize_s
        cpu = time.process_time() - cpu_start
        print(json.dumps({
            "tool": "feedparser",
            "variant": "feedparser " + feedparser.__version__,
            "format": fmt,
            "items": items,
            "bytes": size,
            "tokens": tokens,
            "parse_s": parse_s,
            "normalize_s": normalize_s,
            "total_s": total,
            "items_per_s": items / total,
            "mb_per_s": size / 1e6 / total,
            "cpu_s": cpu,
            "items_per_cpu_s": items / cpu,
        }), flush=True)


if __name__ == "__main__":
    main()
