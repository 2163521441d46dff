//! The newswatch side of `bench/run.sh`, the comparison with the tools people
//! would use instead (feedparser-based monitors, regex-filter readers).
//!
//! Three subcommands, each printing JSON lines on stdout for the driver:
//!
//! * `corpus DIR [FILES ITEMS]` writes a deterministic corpus: `DIR/rss/*.xml`
//!   (RSS 2.0 with `description` and `content:encoded`) and `DIR/atom/*.xml`
//!   (Atom 1.0 with HTML `summary` and `content`, a quarter of the entries as
//!   XHTML), FILES files of ITEMS items per format (default 20 × 100, i.e.
//!   2,000 items each). Bodies are news-like HTML: paragraphs with links and
//!   emphasis, figures, quotes, lists, an embedded tweet with its `<script>`,
//!   character references, accented names and gazetteer entities.
//! * `parse [--entities] [--max-files N] DIR` reads every corpus file and
//!   times, per file, what the daemon does to fetched bytes: `parse_feed`
//!   (feed-rs, stable keys, HTML to text) and then normalization of title,
//!   summary and content (`NormText::new`), or with `--entities` the whole
//!   `Document::new` (normalization, gazetteer tagging, guessed names). File
//!   reading is outside the timed region; each file's results are dropped
//!   before the next, as in the daemon. `cpu_s` is the process's CPU time
//!   over the whole loop (file reads from the page cache included).
//! * `idle --bin PATH [--feeds 100] [--seconds 60]` serves generated feeds on
//!   loopback, starts `PATH run` on them with a long interval, waits for the
//!   first poll of every feed, then samples `/proc/<pid>` once a second and
//!   reports resident memory and CPU time over the idle window.

#[path = "../benches/support/mod.rs"]
mod support;

use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use newswatch::document::Document;
use newswatch::entities::{BUILTIN_ENTITIES, Gazetteer, GazetteerFile};
use newswatch::feed::parse_feed;
use newswatch::text::NormText;
use serde_json::json;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("corpus") => corpus_command(&args[1..]),
        Some("parse") => parse_command(&args[1..]),
        Some("idle") => idle_command(&args[1..]),
        _ => Err(io::Error::other(
            "usage: bench_compare corpus DIR [FILES ITEMS] | parse [--entities] [--max-files N] DIR \
             | idle --bin PATH [--feeds N] [--seconds S]",
        )),
    };
    if let Err(e) = result {
        eprintln!("bench_compare: {e}");
        std::process::exit(1);
    }
}

/// The value after `--name`, if given.
fn option<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn number_option(args: &[String], name: &str, default: usize) -> io::Result<usize> {
    match option(args, name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| io::Error::other(format!("{name} wants a number, not {v:?}"))),
    }
}

// ---------------------------------------------------------------------------
// Corpus
// ---------------------------------------------------------------------------

use support::SplitMix64 as Rng;

trait Percent {
    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: usize) -> bool;
}

impl Percent for Rng {
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Everyday and news words, roughly by frequency: earlier words are drawn
/// more often (see [`Words::word`]).
#[rustfmt::skip]
const COMMON: &[&str] = &[
    "the", "of", "and", "to", "a", "in", "that", "for", "is", "on", "with", "said", "was", "as",
    "at", "by", "it", "from", "his", "her", "their", "has", "have", "had", "be", "been", "will",
    "would", "after", "its", "who", "but", "not", "they", "this", "an", "are", "were", "which",
    "more", "about", "over", "than", "into", "against", "two", "first", "new", "last", "year",
    "years", "government", "minister", "president", "officials", "people", "country", "police",
    "week", "told", "since", "also", "could", "other", "some", "when", "there", "while", "during",
    "military", "forces", "troops", "soldiers", "security", "talks", "agreement", "deal", "leaders",
    "election", "vote", "parliament", "opposition", "party", "court", "ruling", "judge", "law",
    "sanctions", "economy", "inflation", "prices", "energy", "gas", "oil", "market", "markets",
    "bank", "budget", "spending", "tax", "workers", "strike", "protest", "protesters", "crowd",
    "capital", "border", "region", "city", "village", "town", "coast", "river", "bridge", "road",
    "attack", "attacks", "missile", "drone", "drones", "strikes", "ceasefire", "aid", "refugees",
    "hospital", "health", "vaccine", "climate", "flood", "floods", "storm", "fire", "heat",
    "summit", "meeting", "visit", "statement", "spokesperson", "ministry", "agency", "report",
    "reports", "according", "sources", "analysts", "experts", "officials", "diplomats", "envoy",
    "announced", "warned", "denied", "confirmed", "rejected", "approved", "launched", "signed",
    "expected", "planned", "pledged", "called", "urged", "accused", "criticised", "welcomed",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "morning",
    "evening", "night", "hours", "days", "months", "million", "billion", "thousands", "dozens",
    "national", "international", "foreign", "defence", "interior", "finance", "trade", "exports",
    "imports", "tariffs", "shipping", "port", "ports", "airport", "flights", "railway", "power",
    "grid", "outage", "cyberattack", "hackers", "data", "online", "social", "media", "television",
    "newspaper", "interview", "campaign", "candidates", "coalition", "majority", "reform",
    "pension", "schools", "teachers", "students", "university", "research", "scientists", "study",
];

/// Names with accents and letters that do not decompose: what folding is for.
const ACCENTED: &[&str] = &[
    "Sélestat",
    "Łódź",
    "Zürich",
    "Kraków",
    "São Paulo",
    "Malmö",
    "Reykjavík",
    "Gdańsk",
    "Ángel Martínez",
    "François Dupont",
    "Jürgen Weiß",
    "Søren Kierkegaard Plads",
    "Çanakkale",
    "Dvořák",
    "Ñuñoa",
    "Þórshöfn",
];

const SECTIONS: &[&str] = &[
    "World", "Europe", "Politics", "Business", "Defence", "Climate", "Science",
];

const AUTHORS: &[&str] = &[
    "Maria Lopes",
    "Kim Yong-Hyun",
    "Anna Nowak",
    "Jean-Pierre Martin",
    "Olena Kovalenko",
    "Sophie Müller",
    "David Okafor",
    "Lucía Fernández",
];

struct Words {
    /// Surface forms of gazetteer entities (names, aliases, demonyms, capitals).
    entities: Vec<String>,
}

impl Words {
    fn load() -> Words {
        let file = GazetteerFile::parse(BUILTIN_ENTITIES, "builtin")
            .expect("the embedded gazetteer parses: a unit test checks it");
        let mut entities = Vec::new();
        for spec in file.entity {
            entities.push(spec.name.clone());
            entities.extend(spec.aliases.iter().cloned());
            entities.extend(spec.demonyms.iter().cloned());
            entities.extend(spec.links.iter().map(|l| l.name.clone()));
        }
        Words { entities }
    }

    /// A word: mostly common words (a crude Zipf curve: the minimum of two
    /// draws favours the front of the list), some entities, some accented
    /// names, some numbers.
    fn word(&self, rng: &mut Rng) -> String {
        match rng.below(1000) {
            0..=29 => rng.pick(&self.entities).clone(),
            30..=37 => rng.pick(ACCENTED).to_string(),
            38..=47 => format!("{}", rng.below(2000)),
            _ => {
                let i = rng.below(COMMON.len()).min(rng.below(COMMON.len()));
                COMMON[i].to_string()
            }
        }
    }

    fn sentence(&self, rng: &mut Rng, words: usize) -> String {
        let mut out = String::new();
        for i in 0..words {
            let word = self.word(rng);
            if i == 0 {
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    out.extend(first.to_uppercase());
                    out.push_str(chars.as_str());
                }
            } else {
                out.push(' ');
                out.push_str(&word);
                if i + 1 < words && rng.chance(6) {
                    out.push(',');
                }
            }
        }
        out
    }
}

/// Escapes text for an HTML text node.
fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One sentence as inline HTML: some words linked or emphasised, typographic
/// quotes and dashes written as characters or as character references.
fn html_sentence(words: &Words, rng: &mut Rng, item: usize) -> String {
    let length = 10 + rng.below(20);
    let text = escape_html(&words.sentence(rng, length));
    let mut out = String::with_capacity(text.len() + 64);
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match rng.below(100) {
            0 => {
                let _ = write!(
                    out,
                    "<a href=\"https://news.example.com/topics/{}?ref=feed&amp;utm_source=rss\">{word}</a>",
                    word.to_lowercase().trim_end_matches(',')
                );
            }
            1 => {
                let _ = write!(out, "<em>{word}</em>");
            }
            2 => {
                let _ = write!(out, "<strong>{word}</strong>");
            }
            3 => {
                let _ = write!(out, "&#8220;{word}&#8221;");
            }
            4 => {
                let _ = write!(out, "{word}&#8217;s");
            }
            5 => {
                let _ = write!(out, "{word} &mdash;");
            }
            6 => {
                let _ = write!(out, "{word}&nbsp;{}", item % 97);
            }
            7 => {
                let _ = write!(out, "“{word}”");
            }
            _ => out.push_str(word),
        }
    }
    out.push('.');
    out
}

fn paragraph(words: &Words, rng: &mut Rng, item: usize) -> String {
    let sentences = 2 + rng.below(3);
    let mut out = String::from("<p>");
    for s in 0..sentences {
        if s > 0 {
            out.push(' ');
        }
        out.push_str(&html_sentence(words, rng, item));
    }
    out.push_str("</p>");
    out
}

/// The article body as HTML, a few KB like a news site's full-text feed.
fn article_body(words: &Words, rng: &mut Rng, item: usize) -> String {
    let mut out = String::with_capacity(6 * 1024);
    let paragraphs = 4 + rng.below(7);
    for p in 0..paragraphs {
        out.push_str(&paragraph(words, rng, item));
        out.push('\n');
        if p == 1 && rng.chance(25) {
            let _ = writeln!(
                out,
                "<figure class=\"image\"><img src=\"https://cdn.example.com/img/{item}.jpg\" \
                 alt=\"{}\" width=\"1200\" height=\"675\" loading=\"lazy\"/>\
                 <figcaption>{} <span class=\"credit\">Photo: {}</span></figcaption></figure>",
                escape_html(&words.sentence(rng, 6)).replace('"', "&quot;"),
                html_sentence(words, rng, item),
                rng.pick(AUTHORS)
            );
        }
        if p == 2 && rng.chance(15) {
            let _ = writeln!(
                out,
                "<blockquote><p>{}</p><footer>&mdash; {}</footer></blockquote>",
                html_sentence(words, rng, item),
                rng.pick(AUTHORS)
            );
        }
        if p == 3 && rng.chance(10) {
            out.push_str("<ul>");
            for _ in 0..3 {
                let _ = write!(out, "<li>{}</li>", html_sentence(words, rng, item));
            }
            out.push_str("</ul>\n");
        }
        if p == 3 && rng.chance(10) {
            let _ = writeln!(
                out,
                "<blockquote class=\"twitter-tweet\"><p lang=\"en\" dir=\"ltr\">{}</p>&mdash; Newsroom \
                 (@newsroom) <a href=\"https://twitter.com/newsroom/status/{item}\">November 25, 2026</a>\
                 </blockquote><script async src=\"https://platform.twitter.com/widgets.js\" \
                 charset=\"utf-8\"></script>",
                html_sentence(words, rng, item)
            );
        }
    }
    if rng.chance(30) {
        out.push_str("<div class=\"related\"><h3>Related</h3><ul>");
        for r in 0..3 {
            let _ = write!(
                out,
                "<li><a href=\"https://news.example.com/story/{}\">{}</a></li>",
                item * 3 + r,
                escape_html(&words.sentence(rng, 7))
            );
        }
        out.push_str("</ul></div>\n");
    }
    out
}

struct Article {
    number: usize,
    title: String,
    link: String,
    published: DateTime<Utc>,
    author: &'static str,
    section: &'static str,
    summary_html: String,
    body_html: String,
}

fn article(words: &Words, rng: &mut Rng, number: usize, published: DateTime<Utc>) -> Article {
    let length = 7 + rng.below(8);
    let mut title = words.sentence(rng, length);
    if rng.chance(10) {
        title.push_str(" & more");
    }
    if rng.chance(10) {
        title = format!("‘{title}’");
    }
    let section = *rng.pick(SECTIONS);
    let summary_html = paragraph(words, rng, number);
    let body_html = article_body(words, rng, number);
    Article {
        number,
        link: format!(
            "https://news.example.com/{}/2026/11/{}/story-{number}",
            section.to_lowercase(),
            1 + number % 28
        ),
        title,
        published,
        author: AUTHORS[rng.below(AUTHORS.len())],
        section,
        summary_html,
        body_html,
    }
}

fn rss_file(articles: &[Article], file: usize) -> String {
    let mut out = String::with_capacity(articles.len() * 6 * 1024);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\" \
         xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:atom=\"http://www.w3.org/2005/Atom\">\n\
         <channel>\n<title>Example News &#8211; Desk {file}</title>\n\
         <link>https://news.example.com/desk/{file}</link>\n\
         <atom:link href=\"https://news.example.com/desk/{file}/rss.xml\" rel=\"self\" type=\"application/rss+xml\"/>\n\
         <description>Latest stories from desk {file}</description>\n<language>en</language>\n\
         <lastBuildDate>{}</lastBuildDate>\n<ttl>15</ttl>\n",
        articles
            .first()
            .map(|a| a.published.to_rfc2822())
            .unwrap_or_default()
    );
    for a in articles {
        let _ = write!(
            out,
            "<item>\n<title>{}</title>\n<link>{}</link>\n<guid isPermaLink=\"true\">{}</guid>\n\
             <pubDate>{}</pubDate>\n<dc:creator>{}</dc:creator>\n<category>{}</category>\n\
             <description>{}</description>\n<content:encoded><![CDATA[{}]]></content:encoded>\n</item>\n",
            escape_html(&a.title),
            a.link,
            a.link,
            a.published.to_rfc2822(),
            a.author,
            a.section,
            escape_html(&a.summary_html),
            a.body_html
        );
    }
    out.push_str("</channel>\n</rss>\n");
    out
}

fn atom_file(articles: &[Article], file: usize) -> String {
    let mut out = String::with_capacity(articles.len() * 6 * 1024);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"en\">\n\
         <title>Example Wire &#8211; Desk {file}</title>\n<id>tag:wire.example.org,2026:desk-{file}</id>\n\
         <link rel=\"alternate\" type=\"text/html\" href=\"https://wire.example.org/desk/{file}\"/>\n\
         <link rel=\"self\" type=\"application/atom+xml\" href=\"https://wire.example.org/desk/{file}/atom.xml\"/>\n\
         <updated>{}</updated>\n",
        articles
            .first()
            .map(|a| a.published.to_rfc3339())
            .unwrap_or_default()
    );
    for a in articles {
        let _ = write!(
            out,
            "<entry>\n<title type=\"html\">{}</title>\n\
             <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n\
             <id>tag:wire.example.org,2026:{}</id>\n<published>{}</published>\n<updated>{}</updated>\n\
             <author><name>{}</name></author>\n<category term=\"{}\"/>\n\
             <summary type=\"html\">{}</summary>\n",
            escape_html(&escape_html(&a.title)),
            a.link,
            a.number,
            a.published.to_rfc3339(),
            a.published.to_rfc3339(),
            a.author,
            a.section,
            escape_html(&a.summary_html),
        );
        if a.number % 4 == 0 {
            // Inline XHTML: the markup is part of the XML tree. `&nbsp;` and
            // `&mdash;` are not XML entities, so use the characters.
            let xhtml = a
                .body_html
                .replace("&nbsp;", "\u{a0}")
                .replace("&mdash;", "—")
                .replace(" async ", " async=\"async\" ");
            let _ = writeln!(
                out,
                "<content type=\"xhtml\"><div xmlns=\"http://www.w3.org/1999/xhtml\">{xhtml}</div></content>"
            );
        } else {
            let _ = writeln!(
                out,
                "<content type=\"html\">{}</content>",
                escape_html(&a.body_html)
            );
        }
        out.push_str("</entry>\n");
    }
    out.push_str("</feed>\n");
    out
}

fn corpus_command(args: &[String]) -> io::Result<()> {
    let dir = PathBuf::from(args.first().ok_or_else(|| io::Error::other("corpus DIR"))?);
    let files: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(20);
    let items: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(100);
    let words = Words::load();
    let base = Utc
        .with_ymd_and_hms(2026, 11, 25, 12, 0, 0)
        .single()
        .expect("a valid fixed date");
    let mut bytes = [0usize; 2];
    for (f, format) in ["rss", "atom"].into_iter().enumerate() {
        let sub = dir.join(format);
        fs::create_dir_all(&sub)?;
        for file in 0..files {
            // One seed per (format, file): any file can be regenerated alone.
            let mut rng = Rng(0x6e77_636f_6d70_0000 ^ ((f as u64) << 32) ^ file as u64);
            let articles: Vec<Article> = (0..items)
                .map(|i| {
                    let number = file * items + i;
                    let published = base - chrono::Duration::minutes(number as i64 * 7);
                    article(&words, &mut rng, number, published)
                })
                .collect();
            let text = match format {
                "rss" => rss_file(&articles, file),
                _ => atom_file(&articles, file),
            };
            bytes[f] += text.len();
            fs::write(sub.join(format!("{format}-{file:03}.xml")), text)?;
        }
    }
    println!(
        "{}",
        json!({"corpus": dir.display().to_string(), "files_per_format": files,
               "items_per_file": items, "rss_bytes": bytes[0], "atom_bytes": bytes[1]})
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Parse + normalize
// ---------------------------------------------------------------------------

/// The corpus files of one format, sorted.
fn corpus_files(dir: &Path, format: &str) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join(format))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    Ok(files)
}

/// CPU time (user + system) this process has used. On a machine shared with
/// other work, CPU time says more about the cost than wall time.
///
/// Read from the kernel's per-process CPU clock, to the nanosecond: the
/// `/proc/self/stat` counters tick every 10 ms, which is ±10 % of the
/// newswatch side's 0.1 s per format (feedparser's `time.process_time()`
/// reads the same clock as here).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn process_cpu_s() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    if status != 0 {
        return process_cpu_ticks_s();
    }
    now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn process_cpu_s() -> f64 {
    process_cpu_ticks_s()
}

/// CPU time from `/proc/self/stat`, in 10 ms ticks.
fn process_cpu_ticks_s() -> f64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, r)| r.split_whitespace().collect());
    let ticks = |i: usize| rest.get(i).and_then(|v| v.parse::<f64>().ok());
    // USER_HZ is 100 on every Linux architecture this runs on.
    (ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0)) / 100.0
}

fn parse_command(args: &[String]) -> io::Result<()> {
    let entities = args.iter().any(|a| a == "--entities");
    let max_files = number_option(args, "--max-files", usize::MAX)?;
    let dir = PathBuf::from(
        args.last()
            .filter(|a| !a.starts_with("--"))
            .ok_or_else(|| io::Error::other("parse [--entities] [--max-files N] DIR"))?,
    );
    let started = Instant::now();
    let gazetteer = if entities {
        Gazetteer::builtin()
    } else {
        Gazetteer::empty()
    };
    let gazetteer_s = started.elapsed().as_secs_f64();
    for format in ["rss", "atom"] {
        let (mut bytes, mut items, mut tokens, mut mentions) = (0usize, 0usize, 0usize, 0usize);
        let (mut parse_s, mut normalize_s) = (0.0f64, 0.0f64);
        let cpu_start = process_cpu_s();
        for path in corpus_files(&dir, format)?.into_iter().take(max_files) {
            let body = fs::read(&path)?;
            let start = Instant::now();
            let feed = parse_feed(&body, "https://news.example.com/feed")
                .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
            let parsed = Instant::now();
            for item in &feed.items {
                if entities {
                    let doc = Document::new(&item.title, &item.summary, &item.content, &gazetteer);
                    tokens += doc.fields.iter().map(|f| f.tokens.len()).sum::<usize>();
                    mentions += doc.mentions.len() + doc.guessed.len();
                } else {
                    for text in [&item.title, &item.summary, &item.content] {
                        tokens += std::hint::black_box(NormText::new(text.as_str()))
                            .tokens
                            .len();
                    }
                }
            }
            let done = Instant::now();
            parse_s += (parsed - start).as_secs_f64();
            normalize_s += (done - parsed).as_secs_f64();
            bytes += body.len();
            items += feed.items.len();
        }
        let total_s = parse_s + normalize_s;
        let cpu_s = process_cpu_s() - cpu_start;
        println!(
            "{}",
            json!({
                "tool": "newswatch",
                "variant": if entities { "entities" } else { "normalize" },
                "format": format,
                "items": items,
                "bytes": bytes,
                "tokens": tokens,
                "mentions": mentions,
                "parse_s": parse_s,
                "normalize_s": normalize_s,
                "total_s": total_s,
                "items_per_s": items as f64 / total_s,
                "mb_per_s": bytes as f64 / 1e6 / total_s,
                "cpu_s": cpu_s,
                "items_per_cpu_s": items as f64 / cpu_s,
                "setup_s": gazetteer_s,
            })
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Idle daemon
// ---------------------------------------------------------------------------

/// Serves `bodies[n]` at `/feeds/n.xml` with an ETag, answering a matching
/// `If-None-Match` with 304, keep-alive, one thread per connection.
fn serve(listener: TcpListener, bodies: Arc<Vec<Vec<u8>>>) {
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let bodies = bodies.clone();
            thread::spawn(move || {
                let _ = serve_connection(stream, &bodies);
            });
        }
    });
}

fn serve_connection(stream: TcpStream, bodies: &[Vec<u8>]) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut if_none_match = None;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("if-none-match")
            {
                if_none_match = Some(value.trim().to_string());
            }
        }
        let index = path
            .strip_prefix("/feeds/")
            .and_then(|p| p.strip_suffix(".xml"))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n < bodies.len());
        match index {
            Some(n) => {
                let etag = format!("\"idle-{n}\"");
                if if_none_match.as_deref() == Some(etag.as_str()) {
                    writer.write_all(
                        format!("HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\n\r\n").as_bytes(),
                    )?;
                } else {
                    writer.write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml; charset=utf-8\r\n\
                             Content-Length: {}\r\nETag: {etag}\r\n\r\n",
                            bodies[n].len()
                        )
                        .as_bytes(),
                    )?;
                    writer.write_all(&bodies[n])?;
                }
            }
            None => writer.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?,
        }
    }
}

/// One sample of `/proc/<pid>`: VmRSS and VmHWM in KB, CPU (user + system) in
/// seconds, threads.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    rss_kb: u64,
    hwm_kb: u64,
    cpu_s: f64,
    threads: u64,
}

fn sample(pid: u32) -> Option<Sample> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, 12th and 13th after the name.
    let ticks = |i: usize| rest.get(i).and_then(|v| v.parse::<f64>().ok());
    // USER_HZ is 100 on every Linux architecture this runs on.
    Some(Sample {
        rss_kb: field("VmRSS:")?,
        hwm_kb: field("VmHWM:")?,
        cpu_s: (ticks(11)? + ticks(12)?) / 100.0,
        threads: field("Threads:")?,
    })
}

fn idle_command(args: &[String]) -> io::Result<()> {
    let binary = PathBuf::from(
        option(args, "--bin").ok_or_else(|| io::Error::other("idle needs --bin PATH"))?,
    );
    let feeds = number_option(args, "--feeds", 100)?;
    let seconds = number_option(args, "--seconds", 60)?;
    let items = number_option(args, "--items", 20)?;
    let keep = args.iter().any(|a| a == "--keep");

    // Feeds dated around now, so the first poll runs them through the whole
    // pipeline (catch-up window, stories, rules, alert log).
    let words = Words::load();
    let now = Utc::now();
    let bodies: Vec<Vec<u8>> = (0..feeds)
        .map(|f| {
            let mut rng = Rng(0x6964_6c65_0000_0000 ^ f as u64);
            let articles: Vec<Article> = (0..items)
                .map(|i| {
                    // Within the last 12 hours: inside the catch-up window.
                    let age = chrono::Duration::minutes((i * 37 + f % 30) as i64);
                    article(&words, &mut rng, f * items + i, now - age)
                })
                .collect();
            rss_file(&articles, f).into_bytes()
        })
        .collect();
    let feed_bytes: usize = bodies.iter().map(Vec::len).sum();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr: SocketAddr = listener.local_addr()?;
    serve(listener, Arc::new(bodies));

    let dir = tempfile::Builder::new()
        .prefix("newswatch-idle-")
        .tempdir()?;
    let config = dir.path().join("newswatch.toml");
    let mut text = format!(
        "[defaults]\ninterval = \"12h\"\ncatch_up = \"24h\"\n\n[notify]\ndesktop = false\n\n\
         [state]\ndir = {:?}\n\n",
        dir.path().join("state").display().to_string()
    );
    for f in 0..feeds {
        let _ = write!(
            text,
            "[[feeds]]\nurl = \"http://{addr}/feeds/{f}.xml\"\nname = \"Idle desk {f}\"\n\n"
        );
    }
    text.push_str(
        "[[rules]]\nid = \"troops\"\nseverity = \"high\"\n\
         query = '(troops OR soldiers) NEAR/3 border AND kind:country>=2'\n\n\
         [[rules]]\nid = \"summit\"\nquery = 'summit NEAR/2 leaders'\n",
    );
    fs::write(&config, text)?;
    let log = dir.path().join("newswatch.log");
    let started = Instant::now();
    let mut child = Command::new(&binary)
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log)?)
        .spawn()?;
    let pid = child.id();

    // The first cycle is over when every feed has logged its poll.
    let deadline = Instant::now() + Duration::from_secs(180);
    let polled = loop {
        let text = fs::read_to_string(&log).unwrap_or_default();
        let polled = text
            .lines()
            .filter(|l| l.contains(" polled") || l.contains("poll failed"))
            .count();
        if polled >= feeds || Instant::now() > deadline || child.try_wait()?.is_some() {
            break polled;
        }
        thread::sleep(Duration::from_millis(100));
    };
    let first_cycle_s = started.elapsed().as_secs_f64();
    // Let the delivery task write the alerts of the last polls.
    thread::sleep(Duration::from_secs(1));
    let first = sample(pid).ok_or_else(|| io::Error::other("newswatch exited early"))?;
    let mut samples = vec![first];
    for _ in 0..seconds {
        thread::sleep(Duration::from_secs(1));
        match sample(pid) {
            Some(s) => samples.push(s),
            None => break,
        }
    }
    let last = *samples.last().expect("at least the first sample");
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    if keep {
        // The full map, to see what holds the memory.
        let _ = fs::copy(format!("/proc/{pid}/smaps"), dir.path().join("smaps.txt"));
    }
    // SIGTERM: the daemon stops cleanly.
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let stopped = child.wait()?;
    let failed = fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("poll failed"))
        .count();
    let alerts = fs::read_to_string(dir.path().join("state").join("alerts.jsonl"))
        .map_or(0, |t| t.lines().count());
    let anon_kb = smaps
        .lines()
        .find_map(|l| l.strip_prefix("Anonymous:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    let rss_max_kb = samples.iter().map(|s| s.rss_kb).max().unwrap_or(0);
    println!(
        "{}",
        json!({
            "feeds": feeds,
            "items_per_feed": items,
            "feed_bytes": feed_bytes,
            "polled": polled,
            "failed": failed,
            "alerts": alerts,
            "first_cycle_s": first_cycle_s,
            "first_cycle_cpu_s": first.cpu_s,
            "idle_s": seconds,
            "rss_start_mb": first.rss_kb as f64 / 1024.0,
            "rss_end_mb": last.rss_kb as f64 / 1024.0,
            "rss_max_mb": rss_max_kb as f64 / 1024.0,
            "hwm_mb": last.hwm_kb as f64 / 1024.0,
            "anon_end_mb": anon_kb as f64 / 1024.0,
            "idle_cpu_s": last.cpu_s - first.cpu_s,
            "threads": last.threads,
            "exit_ok": stopped.success(),
        })
    );
    if keep {
        let kept = dir.keep();
        eprintln!("kept {}", kept.display());
    }
    Ok(())
}
