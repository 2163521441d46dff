//! Polling that scales: two `newswatch once` cycles over 10,000 feeds.
//!
//! Run with `cargo bench --bench polling`. The bench
//!
//! 1. generates 10,000 RSS 2.0 feeds of 20 items each, deterministically:
//!    everyday words mixed with made-up distinctive ones (so that items form
//!    stories the way real news does: the 4 newest items of each feed are wire
//!    copy shared by 5 neighbouring feeds, the rest are stories of their own),
//!    HTML descriptions, unique guids, publication dates within the last 15
//!    hours so that the default 24 h catch-up lets every item through to the
//!    rules, and a phrase planted in 0.64% of the items for three rules;
//! 2. serves them from memory over keep-alive HTTP/1.1 on 100 loopback
//!    addresses (127.0.0.1 … 127.0.0.100), with an `ETag` per feed and
//!    `304 Not Modified` on a matching `If-None-Match`;
//! 3. takes the `newswatch` binary cargo built for this bench (bench profile,
//!    i.e. release settings) and writes a config with those 10,000 feeds, the
//!    default fetch limits (32 in flight, 2 per host) and the three rules;
//! 4. runs `newswatch --config … once` twice on a fresh state: cycle 1 (every
//!    feed answers 200; 200,000 items are parsed, normalized, matched, grouped
//!    into stories and stored) and cycle 2 (every feed answers 304);
//! 5. repeats that (3 runs by default) and prints, per cycle, wall time,
//!    CPU time, peak RSS and bytes written by the newswatch process, what the
//!    server saw, and the alerts written; then the median and spread, sanity
//!    checks (every request answered as intended, exactly the expected
//!    alerts) and a PASS/FAIL line per target. A FAIL does not panic: the
//!    numbers are the result.
//!
//! Knobs (environment variables), for investigating a failed target:
//! `NEWSWATCH_BENCH_FEEDS` (default 10000), `NEWSWATCH_BENCH_HOSTS` (100),
//! `NEWSWATCH_BENCH_RUNS` (3), `NEWSWATCH_BENCH_BIN` (another newswatch
//! binary to measure, e.g. a script running it under `perf record`),
//! `NEWSWATCH_BENCH_KEEP=1` (keep each run's directory: config, state,
//! newswatch's stderr as `cycle-N.log`), `NEWSWATCH_BENCH_TIMEOUT` (seconds
//! before a cycle is killed, default 600) and `NEWSWATCH_BENCH_CORPUS=narrow`
//! (only 66 everyday words and no wire copy: every item resembles every other,
//! a stress case for story grouping). `RUST_LOG` is passed through.
//!
//! Columns: `cpu_s` is user + system time; `rss_MB` the peak resident set
//! (MB = 10^6 bytes); `written_MB` what the process caused to be written to
//! storage (SQLite pages and WAL, the alert log); `requests`, `304`, `200` and
//! `conns` (TCP connections accepted) are counted by the server; `load` is the
//! 1-minute load average when the cycle started, because wall times mean
//! little on a machine that other work keeps busy.
//!
//! CPU time, peak RSS and bytes written come from `/usr/bin/time` (GNU time:
//! wait4 rusage, exact; with coreutils `timeout` enforcing the time limit)
//! when both exist, else from sampling `/proc/<pid>` until the process becomes
//! a zombie (peak RSS then may miss the last ~20 ms of growth).

mod support;
use support::SplitMix64;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

const ITEMS_PER_FEED: usize = 20;

/// Targets from the issue. Judged on the median of the runs.
const CYCLE1_WALL_LIMIT_S: f64 = 60.0;
const CYCLE1_RSS_LIMIT_MB: f64 = 100.0;
const CYCLE2_CPU_LIMIT_S: f64 = 2.0;

/// The newest items of every feed are wire copy: the same event, with the
/// same title and lede, carried by `EVENT_FEEDS` neighbouring feeds, so that
/// stories spanning several sources are part of the workload (8,000 stories
/// of 5 items in the default corpus); the other items are each their own
/// story.
const EVENT_ITEMS: usize = 4;
const EVENT_FEEDS: usize = 5;

/// Which items trigger which rule, numbering the items that are not wire copy
/// `feed * 16 + (item - 4)`. Each triggering item is a story of its own, so
/// story cooldowns cannot merge its alert with another's; the residues are
/// chosen so that no item triggers two rules. The expected alert count is
/// thus exact: 1/200 + 1/500 + 1/1000 of those items (0.64% of all items).
const TRIGGERS: [(usize, usize); 3] = [(200, 7), (500, 3), (1000, 11)];

/// The phrase planted in the description of a triggering item, per rule.
const TRIGGER_PHRASES: [&str; 3] = [
    "Witnesses said troops were deployed along the valley road overnight.",
    "The foreign ministers will meet again at a summit next spring.",
    "North Korea was named in a fresh round of sanctions on shipping firms.",
];

/// The rules: each matches only its planted phrase, never the vocabulary.
const RULES: &str = r#"
[[rules]]
id = "bench-troops"
title = "Troops deployed"
severity = "high"
query = 'troops NEAR/5 deploy*'

[[rules]]
id = "bench-summit"
title = "Ministers' summit"
severity = "medium"
query = 'summit AND "foreign ministers"'

[[rules]]
id = "bench-sanctions"
title = "Sanctions on North Korea"
severity = "low"
query = 'entity:"North Korea" AND sanction*'
"#;

/// Everyday news words that none of the rules look for, about 40% of the
/// words of an item. A few place names are in the mix so that entity tagging
/// has something to find, as in real feeds.
#[rustfmt::skip]
const WORDS: &[&str] = &[
    "council", "budget", "harvest", "river", "festival", "railway", "school", "museum", "weather",
    "market", "bridge", "hospital", "election", "court", "storm", "library", "airport", "farmers",
    "teachers", "students", "mayor", "village", "harbour", "energy", "prices", "housing", "water",
    "traffic", "police", "garden", "concert", "theatre", "factory", "workers", "strike", "tourism",
    "season", "record", "report", "plan", "vote", "debate", "ferry", "ruling", "project", "opens",
    "closes", "delayed", "approved", "rejected", "expands", "celebrates", "warns", "announces",
    "Paris", "Berlin", "Lisbon", "Canada", "Brazil", "Kenya", "Norway", "Chile", "Vienna", "Osaka",
];

/// Syllables of the made-up words that make up the rest of an item: names,
/// places and subject words in a real feed, which tell stories apart. Three
/// syllables give 13,824 fairly frequent words, four give 331,776 rare ones
/// (each half of the draws): a crude Zipf curve, so that story matching sees
/// both long and short posting lists. None spells a rule term or an entity.
const SYLLABLES: [&str; 24] = [
    "ka", "lo", "mi", "ren", "tas", "vo", "bel", "dur", "fin", "gos", "hal", "jun", "kem", "lir",
    "mus", "nor", "pel", "qua", "ris", "sol", "tev", "vak", "wen", "zor",
];

/// Which words items are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vocabulary {
    /// Everyday words and made-up distinctive ones, plus wire-copy events:
    /// items form stories the way real news does.
    Wide,
    /// Only the 66 everyday words, no events: every item resembles every
    /// other, so story matching lumps them into a handful of huge stories. A
    /// stress case for the story code, not a realistic feed.
    Narrow,
}

/// The run's parameters.
struct Settings {
    feeds: usize,
    hosts: usize,
    runs: usize,
    keep: bool,
    binary: Option<PathBuf>,
    vocabulary: Vocabulary,
    /// A cycle still running after this is killed and reported: the bench
    /// must end by itself even when newswatch degrades badly.
    timeout: Duration,
}

impl Settings {
    fn from_env() -> Settings {
        let number = |name: &str, default: usize| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .filter(|&n: &usize| n > 0)
                .unwrap_or(default)
        };
        Settings {
            feeds: number("NEWSWATCH_BENCH_FEEDS", 10_000),
            // Loopback addresses 127.0.0.1 … 127.0.0.254 stay well-behaved.
            hosts: number("NEWSWATCH_BENCH_HOSTS", 100).min(254),
            runs: number("NEWSWATCH_BENCH_RUNS", 3),
            keep: std::env::var("NEWSWATCH_BENCH_KEEP").is_ok_and(|v| v == "1"),
            binary: std::env::var_os("NEWSWATCH_BENCH_BIN").map(PathBuf::from),
            vocabulary: match std::env::var("NEWSWATCH_BENCH_CORPUS").as_deref() {
                Ok("narrow") => Vocabulary::Narrow,
                _ => Vocabulary::Wide,
            },
            timeout: Duration::from_secs(number("NEWSWATCH_BENCH_TIMEOUT", 600) as u64),
        }
    }
}

/// The words and sentences of generated feeds.
trait Prose {
    fn word(&mut self, vocabulary: Vocabulary) -> String;
    fn sentence(&mut self, words: usize, vocabulary: Vocabulary) -> String;
}

impl Prose for SplitMix64 {
    fn word(&mut self, vocabulary: Vocabulary) -> String {
        if vocabulary == Vocabulary::Narrow || self.below(10) < 4 {
            return WORDS[self.below(WORDS.len())].to_string();
        }
        let syllables = 3 + self.below(2);
        (0..syllables)
            .map(|_| SYLLABLES[self.below(SYLLABLES.len())])
            .collect()
    }

    fn sentence(&mut self, words: usize, vocabulary: Vocabulary) -> String {
        let mut out = String::new();
        for i in 0..words {
            let word = self.word(vocabulary);
            if i == 0 {
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    out.extend(first.to_uppercase());
                    out.push_str(chars.as_str());
                }
            } else {
                out.push(' ');
                out.push_str(&word);
            }
        }
        out.push('.');
        out
    }
}

/// Every feed, pre-rendered as the complete 200 response the server sends.
struct Corpus {
    ok_responses: Vec<Vec<u8>>,
    etags: Vec<String>,
    urls: Vec<String>,
    body_bytes: usize,
    expected_alerts: usize,
}

fn feed_url(addrs: &[SocketAddr], feed: usize) -> String {
    format!("http://{}/feeds/{feed}.xml", addrs[feed % addrs.len()])
}

/// Builds the feeds. `now` anchors publication dates so every item falls
/// inside the 24 h catch-up window of a first fetch.
fn build_corpus(
    feeds: usize,
    addrs: &[SocketAddr],
    now: DateTime<Utc>,
    vocabulary: Vocabulary,
) -> Corpus {
    let mut corpus = Corpus {
        ok_responses: Vec::with_capacity(feeds),
        etags: Vec::with_capacity(feeds),
        urls: Vec::with_capacity(feeds),
        body_bytes: 0,
        expected_alerts: 0,
    };
    for feed in 0..feeds {
        let mut rng = SplitMix64(0x6e77_6265_6e63_6800 ^ feed as u64);
        let mut body = String::with_capacity(12 * 1024);
        let _ = write!(
            body,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <rss version=\"2.0\"><channel>\n\
             <title>Bench Desk {feed}</title>\n\
             <link>https://news{feed}.example/</link>\n\
             <description>Generated feed {feed} for the polling bench</description>\n"
        );
        for item in 0..ITEMS_PER_FEED {
            // Newest first, as publishers do; at most ~15 h old.
            let minutes = (item * 45 + feed % 40) as i64;
            let published = (now - chrono::Duration::minutes(minutes)).to_rfc2822();
            let wire = vocabulary == Vocabulary::Wide && item < EVENT_ITEMS;
            let (headline, mut paragraphs) = if wire {
                // Title and lede from the event, the rest from the outlet.
                let event = (feed / EVENT_FEEDS * EVENT_ITEMS + item) as u64;
                let mut wire = SplitMix64(0x7769_7265_0000_0000 ^ event);
                let headline = wire.sentence(7, vocabulary);
                let lede = wire.sentence(30, vocabulary);
                (
                    headline,
                    [
                        lede,
                        rng.sentence(6, vocabulary),
                        rng.sentence(12, vocabulary),
                    ],
                )
            } else {
                (
                    rng.sentence(7, vocabulary),
                    [
                        rng.sentence(14, vocabulary),
                        rng.sentence(18, vocabulary),
                        rng.sentence(12, vocabulary),
                    ],
                )
            };
            if !wire {
                let own = feed * ITEMS_PER_FEED + item;
                let number = match vocabulary {
                    Vocabulary::Wide => feed * (ITEMS_PER_FEED - EVENT_ITEMS) + item - EVENT_ITEMS,
                    Vocabulary::Narrow => own,
                };
                for (rule, &(modulus, residue)) in TRIGGERS.iter().enumerate() {
                    if number % modulus == residue {
                        paragraphs[1] = TRIGGER_PHRASES[rule].to_string();
                        corpus.expected_alerts += 1;
                    }
                }
            }
            // The feed and item numbers make every title unique (digits are
            // no story signature terms, so wire copy still matches).
            let title = format!("{} {feed}-{item}", headline.trim_end_matches('.'));
            // Descriptions carry HTML, as most real feeds' do, so the HTML to
            // text conversion is part of what is measured.
            let _ = write!(
                body,
                "<item>\n<title>{title}</title>\n\
                 <link>https://news{feed}.example/story/{item}</link>\n\
                 <guid isPermaLink=\"false\">urn:newswatch-bench:{feed}:{item}</guid>\n\
                 <pubDate>{published}</pubDate>\n\
                 <description><![CDATA[<p>{}</p><p>{} <em>{}</em></p>\
                 <p><a href=\"https://news{feed}.example/story/{item}\">Read more</a></p>]]></description>\n\
                 </item>\n",
                paragraphs[0], paragraphs[1], paragraphs[2]
            );
        }
        body.push_str("</channel></rss>\n");
        let etag = format!("\"bench-{feed}-v1\"");
        let mut response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml; charset=utf-8\r\n\
             Content-Length: {}\r\nETag: {etag}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(body.as_bytes());
        corpus.body_bytes += body.len();
        corpus.ok_responses.push(response);
        corpus.etags.push(etag);
        corpus.urls.push(feed_url(addrs, feed));
    }
    corpus
}

/// What the server saw since the last [`Stats::take`].
#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    not_modified: AtomicU64,
    ok: AtomicU64,
    other: AtomicU64,
    connections: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    requests: u64,
    not_modified: u64,
    ok: u64,
    other: u64,
    connections: u64,
}

impl Stats {
    fn take(&self) -> Counts {
        Counts {
            requests: self.requests.swap(0, Ordering::Relaxed),
            not_modified: self.not_modified.swap(0, Ordering::Relaxed),
            ok: self.ok.swap(0, Ordering::Relaxed),
            other: self.other.swap(0, Ordering::Relaxed),
            connections: self.connections.swap(0, Ordering::Relaxed),
        }
    }
}

/// Binds one listener per loopback address. Distinct addresses are distinct
/// hosts to newswatch, so its per-host limit (2 in flight) does not serialise
/// the whole run onto one host. Linux routes all of 127.0.0.0/8 to loopback.
fn bind_listeners(hosts: usize) -> io::Result<Vec<TcpListener>> {
    (1..=hosts)
        .map(|h| TcpListener::bind((Ipv4Addr::new(127, 0, 0, h as u8), 0)))
        .collect()
}

/// Serves the corpus: one thread per listener accepting, one per connection
/// serving keep-alive requests. reqwest pools connections, so a cycle opens
/// only a few hundred of them; threads are the simplest server that keeps up.
fn serve(listeners: Vec<TcpListener>, corpus: Arc<Corpus>, stats: Arc<Stats>) {
    for listener in listeners {
        let (corpus, stats) = (corpus.clone(), stats.clone());
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                stats.connections.fetch_add(1, Ordering::Relaxed);
                let (corpus, stats) = (corpus.clone(), stats.clone());
                thread::spawn(move || {
                    // A connection error only ends that connection; newswatch
                    // reports the failed poll, and the counts show it.
                    let _ = serve_connection(stream, &corpus, &stats);
                });
            }
        });
    }
}

/// `/feeds/<n>.xml` → `n`.
fn feed_index(path: &str) -> Option<usize> {
    path.strip_prefix("/feeds/")?
        .strip_suffix(".xml")?
        .parse()
        .ok()
}

fn serve_connection(stream: TcpStream, corpus: &Corpus, stats: &Stats) -> io::Result<()> {
    stream.set_nodelay(true)?;
    // Bounds the life of a connection newswatch leaves idle in its pool; the
    // process exits at the end of a cycle, which closes it much sooner.
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
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
        let mut close = false;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("if-none-match") {
                    if_none_match = Some(value.to_string());
                } else if name.eq_ignore_ascii_case("connection")
                    && value.eq_ignore_ascii_case("close")
                {
                    close = true;
                }
            }
        }
        stats.requests.fetch_add(1, Ordering::Relaxed);
        match feed_index(&path).filter(|&n| n < corpus.ok_responses.len()) {
            Some(n) => {
                let etag = &corpus.etags[n];
                let matches = if_none_match
                    .as_deref()
                    .is_some_and(|v| v == "*" || v.split(',').any(|t| t.trim() == etag));
                if matches {
                    stats.not_modified.fetch_add(1, Ordering::Relaxed);
                    let head = format!("HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\n\r\n");
                    writer.write_all(head.as_bytes())?;
                } else {
                    stats.ok.fetch_add(1, Ordering::Relaxed);
                    writer.write_all(&corpus.ok_responses[n])?;
                }
            }
            None => {
                stats.other.fetch_add(1, Ordering::Relaxed);
                writer.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?;
            }
        }
        if close {
            return Ok(());
        }
    }
}

/// The config under test: defaults everywhere except what the bench needs
/// (its own state dir, no desktop notifications), with the fetch limits
/// spelled out because they are what this bench is about.
fn write_config(path: &Path, state_dir: &Path, urls: &[String]) -> io::Result<()> {
    let mut text = String::with_capacity(urls.len() * 64 + 1024);
    let _ = write!(
        text,
        "[defaults]\ncatch_up = \"24h\"\n\n\
         [notify]\ndesktop = false\n\n\
         [state]\ndir = {:?}\n\n\
         [fetch]\nconcurrency = 32\nper_host = 2\n",
        state_dir.display().to_string()
    );
    for (i, url) in urls.iter().enumerate() {
        let _ = write!(
            text,
            "\n[[feeds]]\nurl = \"{url}\"\nname = \"Bench Desk {i}\"\n"
        );
    }
    text.push_str(RULES);
    fs::write(path, text)
}

/// The newswatch binary to measure. `cargo bench` builds it in the bench
/// profile (release settings) as a dependency of this bench and tells us where
/// it is, so it is always fresh and no nested cargo build is needed.
const NEWSWATCH: &str = env!("CARGO_BIN_EXE_newswatch");

/// Resources used by one newswatch process.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    wall_s: f64,
    user_s: f64,
    sys_s: f64,
    peak_rss_kb: u64,
    /// Bytes the process caused to be written to storage (SQLite pages, WAL,
    /// the alert log): write amplification shows up here.
    written_bytes: u64,
    success: bool,
    timed_out: bool,
}

impl Usage {
    fn cpu_s(&self) -> f64 {
        self.user_s + self.sys_s
    }
}

/// Runs `newswatch --config <config> once`, stderr to `log`, killed after
/// `timeout`.
fn run_once(binary: &Path, config: &Path, log: &Path, timeout: Duration) -> io::Result<Usage> {
    let gnu_time = Path::new("/usr/bin/time");
    let coreutils_timeout = Path::new("/usr/bin/timeout");
    let stderr = fs::File::create(log)?;
    if gnu_time.exists() && coreutils_timeout.exists() {
        let report = log.with_extension("time");
        let start = Instant::now();
        // time → timeout → newswatch: rusage covers the whole tree, and
        // timeout (a few hundred KB, no CPU) cannot be its peak.
        let status = Command::new(gnu_time)
            .arg("-o")
            .arg(&report)
            // %O: file system outputs, in 512-byte blocks.
            .args(["-f", "%e %U %S %M %O"])
            .arg(coreutils_timeout)
            .args(["-s", "KILL", &timeout.as_secs().to_string()])
            .arg(binary)
            .arg("--config")
            .arg(config)
            .arg("once")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .status()?;
        let wall_s = start.elapsed().as_secs_f64();
        // GNU time prefixes "Command exited with non-zero status N" on failure;
        // the numbers are always the last line.
        let text = fs::read_to_string(&report)?;
        let fields: Vec<&str> = text
            .lines()
            .last()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let number = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        return match (number(1), number(2), number(3), number(4)) {
            (Some(user_s), Some(sys_s), Some(rss), Some(blocks)) => Ok(Usage {
                wall_s,
                user_s,
                sys_s,
                peak_rss_kb: rss as u64,
                written_bytes: blocks as u64 * 512,
                success: status.success(),
                // timeout exits with 128 + SIGKILL when it had to kill.
                timed_out: status.code() == Some(137) && wall_s >= timeout.as_secs_f64(),
            }),
            _ => Err(io::Error::other(format!(
                "unexpected /usr/bin/time output: {text:?}"
            ))),
        };
    }
    run_once_sampling(binary, config, stderr, timeout)
}

/// The fallback without GNU time: sample `/proc/<pid>` until the process is a
/// zombie. A zombie still reports its (whole thread group's) CPU times in
/// `stat`, so CPU is exact; VmHWM and `io` disappear with its memory, so the
/// peak RSS and bytes written are the last sample before exit.
fn run_once_sampling(
    binary: &Path,
    config: &Path,
    stderr: fs::File,
    timeout: Duration,
) -> io::Result<Usage> {
    // USER_HZ is 100 on every Linux architecture this runs on.
    const TICKS_PER_S: f64 = 100.0;
    let start = Instant::now();
    let mut child = Command::new(binary)
        .arg("--config")
        .arg(config)
        .arg("once")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()?;
    let proc_dir = PathBuf::from(format!("/proc/{}", child.id()));
    let mut usage = Usage::default();
    loop {
        let stat = fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
        // Fields after the parenthesised command name: state is the first,
        // utime and stime the 12th and 13th.
        let rest: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(Vec::new(), |(_, r)| r.split_whitespace().collect());
        let ticks = |i: usize| rest.get(i).and_then(|v| v.parse::<f64>().ok());
        if let (Some(user), Some(sys)) = (ticks(11), ticks(12)) {
            usage.user_s = user / TICKS_PER_S;
            usage.sys_s = sys / TICKS_PER_S;
        }
        if rest
            .first()
            .is_none_or(|state| *state == "Z" || *state == "X")
        {
            break;
        }
        let status = fs::read_to_string(proc_dir.join("status")).unwrap_or_default();
        if let Some(kb) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        {
            usage.peak_rss_kb = kb;
        }
        let io = fs::read_to_string(proc_dir.join("io")).unwrap_or_default();
        if let Some(bytes) = io
            .lines()
            .find_map(|l| l.strip_prefix("write_bytes:"))
            .and_then(|v| v.trim().parse().ok())
        {
            usage.written_bytes = bytes;
        }
        if start.elapsed() >= timeout && !usage.timed_out {
            usage.timed_out = true;
            child.kill()?;
        }
        thread::sleep(Duration::from_millis(20));
    }
    usage.success = child.wait()?.success();
    usage.wall_s = start.elapsed().as_secs_f64();
    Ok(usage)
}

/// One cycle's numbers.
#[derive(Debug, Clone, Copy, Default)]
struct Cycle {
    usage: Usage,
    server: Counts,
    alerts: usize,
    /// The 1-minute load average when the cycle started.
    load: f64,
}

fn load_average() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn count_lines(path: &Path) -> usize {
    fs::read(path).map_or(0, |bytes| bytes.iter().filter(|&&b| b == b'\n').count())
}

/// The last line newswatch wrote to stderr: `once` ends with its summary.
fn last_line(path: &Path) -> String {
    fs::read_to_string(path)
        .ok()
        .and_then(|t| t.lines().last().map(str::to_string))
        .unwrap_or_default()
}

/// One run: a fresh state directory, cycle 1 (all 200), cycle 2 (all 304).
fn run(
    binary: &Path,
    corpus: &Corpus,
    stats: &Stats,
    settings: &Settings,
) -> io::Result<[Cycle; 2]> {
    let dir = tempfile::Builder::new()
        .prefix("newswatch-polling-")
        .tempdir()?;
    let state_dir = dir.path().join("state");
    let config = dir.path().join("newswatch.toml");
    write_config(&config, &state_dir, &corpus.urls)?;
    let mut cycles = [Cycle::default(); 2];
    for (i, cycle) in cycles.iter_mut().enumerate() {
        let log = dir.path().join(format!("cycle-{}.log", i + 1));
        stats.take();
        let load = load_average();
        let usage = run_once(binary, &config, &log, settings.timeout)?;
        // Responses are written before newswatch can exit, but the server
        // threads bump counters after writing; give them a moment.
        thread::sleep(Duration::from_millis(50));
        *cycle = Cycle {
            usage,
            server: stats.take(),
            alerts: count_lines(&state_dir.join("alerts.jsonl")),
            load,
        };
        let summary = last_line(&log);
        println!("    cycle {}: newswatch says: {summary}", i + 1);
        if usage.timed_out {
            println!(
                "    cycle {}: newswatch TIMED OUT after {:.0} s and was killed; its log: {}",
                i + 1,
                usage.wall_s,
                log.display()
            );
        } else if !usage.success {
            println!(
                "    cycle {}: newswatch FAILED; its log: {}",
                i + 1,
                log.display()
            );
        }
    }
    let db = state_dir.join("state.sqlite");
    let db_bytes = fs::metadata(&db).map_or(0, |m| m.len())
        + fs::metadata(state_dir.join("state.sqlite-wal")).map_or(0, |m| m.len());
    println!("    state.sqlite + WAL: {:.1} MB", db_bytes as f64 / 1e6);
    if settings.keep {
        let kept = dir.keep();
        println!("    kept {}", kept.display());
    }
    Ok(cycles)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn spread(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

fn print_row(label: &str, c: &Cycle) {
    println!(
        "{label:<10} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9.1} {:>10.1} {:>9} {:>7} {:>7} {:>6} {:>7} {:>5.1}",
        c.usage.wall_s,
        c.usage.user_s,
        c.usage.sys_s,
        c.usage.cpu_s(),
        c.usage.peak_rss_kb as f64 * 1024.0 / 1e6,
        c.usage.written_bytes as f64 / 1e6,
        c.server.requests,
        c.server.not_modified,
        c.server.ok,
        c.server.connections,
        c.alerts,
        c.load,
    );
}

/// A target is judged on the median; a cycle that timed out in any run fails
/// it outright, since a killed process leaves no trustworthy numbers.
fn verdict(name: &str, value: f64, limit: f64, unit: &str, timed_out: bool) {
    if timed_out {
        println!("FAIL  {name}: the cycle timed out (target < {limit} {unit})");
        return;
    }
    let result = if value < limit { "PASS" } else { "FAIL" };
    println!("{result}  {name}: median {value:.2} {unit} (target < {limit} {unit})");
}

fn main() {
    let settings = Settings::from_env();
    let binary = settings
        .binary
        .clone()
        .unwrap_or_else(|| PathBuf::from(NEWSWATCH));
    let listeners = bind_listeners(settings.hosts).expect("binding loopback listeners");
    let addrs: Vec<SocketAddr> = listeners
        .iter()
        .map(|l| l.local_addr().expect("a bound listener has an address"))
        .collect();
    let started = Instant::now();
    let corpus = Arc::new(build_corpus(
        settings.feeds,
        &addrs,
        Utc::now(),
        settings.vocabulary,
    ));
    let stats = Arc::new(Stats::default());
    serve(listeners, corpus.clone(), stats.clone());

    let items = settings.feeds * ITEMS_PER_FEED;
    println!(
        "polling bench: {} feeds x {ITEMS_PER_FEED} items = {items} items, {:.1} MB of feeds \
         (mean {:.1} KB), {} hosts, {} runs; corpus built in {:.1} s",
        settings.feeds,
        corpus.body_bytes as f64 / 1e6,
        corpus.body_bytes as f64 / settings.feeds as f64 / 1024.0,
        addrs.len(),
        settings.runs,
        started.elapsed().as_secs_f64()
    );
    println!(
        "binary: {}; expected alerts: {}",
        binary.display(),
        corpus.expected_alerts
    );

    let mut results: Vec<[Cycle; 2]> = Vec::new();
    for r in 0..settings.runs {
        println!("run {}:", r + 1);
        match run(&binary, &corpus, &stats, &settings) {
            Ok(cycles) => results.push(cycles),
            Err(e) => println!("    run {} failed: {e}", r + 1),
        }
    }
    if results.is_empty() {
        println!("no run completed");
        return;
    }

    println!();
    println!(
        "{:<10} {:>8} {:>8} {:>8} {:>8} {:>9} {:>10} {:>9} {:>7} {:>7} {:>6} {:>7} {:>5}",
        "run/cycle",
        "wall_s",
        "user_s",
        "sys_s",
        "cpu_s",
        "rss_MB",
        "written_MB",
        "requests",
        "304",
        "200",
        "conns",
        "alerts",
        "load"
    );
    for (r, cycles) in results.iter().enumerate() {
        for (c, cycle) in cycles.iter().enumerate() {
            print_row(&format!("{}/{}", r + 1, c + 1), cycle);
        }
    }

    // Median [min – max] of each measure, per cycle.
    let mut summary: HashMap<(usize, &str), Vec<f64>> = HashMap::new();
    for cycles in &results {
        for (c, cycle) in cycles.iter().enumerate() {
            let u = &cycle.usage;
            for (name, value) in [
                ("wall_s", u.wall_s),
                ("cpu_s", u.cpu_s()),
                ("rss_MB", u.peak_rss_kb as f64 * 1024.0 / 1e6),
                ("written_MB", u.written_bytes as f64 / 1e6),
            ] {
                summary.entry((c, name)).or_default().push(value);
            }
        }
    }
    println!();
    println!("median [min – max] over {} runs:", results.len());
    for c in 0..2 {
        let mut line = format!("cycle {}:", c + 1);
        for name in ["wall_s", "cpu_s", "rss_MB", "written_MB"] {
            let values = &summary[&(c, name)];
            let (min, max) = spread(values);
            let _ = write!(line, "  {name} {:.2} [{min:.2} – {max:.2}]", median(values));
        }
        println!("{line}");
    }

    // Sanity: the measured work is the intended work.
    let feeds = settings.feeds as u64;
    for (r, [first, second]) in results.iter().enumerate() {
        let mut problems = Vec::new();
        if first.server.ok != feeds || first.server.requests != feeds {
            problems.push(format!(
                "cycle 1 served {} requests, {} of them 200 (expected {feeds} and {feeds})",
                first.server.requests, first.server.ok
            ));
        }
        if second.server.not_modified != feeds || second.server.requests != feeds {
            problems.push(format!(
                "cycle 2 served {} requests, {} of them 304 (expected {feeds} and {feeds})",
                second.server.requests, second.server.not_modified
            ));
        }
        if first.server.other + second.server.other > 0 {
            problems.push(format!(
                "{} requests for unknown paths",
                first.server.other + second.server.other
            ));
        }
        if first.alerts != corpus.expected_alerts || second.alerts != first.alerts {
            problems.push(format!(
                "alerts after cycle 1: {}, after cycle 2: {} (expected {} and no more)",
                first.alerts, second.alerts, corpus.expected_alerts
            ));
        }
        for p in problems {
            println!("CHECK run {}: {p}", r + 1);
        }
    }

    println!();
    let timed_out = |c: usize| results.iter().any(|cycles| cycles[c].usage.timed_out);
    verdict(
        "cycle 1 wall time",
        median(&summary[&(0, "wall_s")]),
        CYCLE1_WALL_LIMIT_S,
        "s",
        timed_out(0),
    );
    verdict(
        "cycle 1 peak RSS",
        median(&summary[&(0, "rss_MB")]),
        CYCLE1_RSS_LIMIT_MB,
        "MB",
        timed_out(0),
    );
    verdict(
        "cycle 2 CPU time",
        median(&summary[&(1, "cpu_s")]),
        CYCLE2_CPU_LIMIT_S,
        "s",
        timed_out(1),
    );
}
