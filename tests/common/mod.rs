//! Test support: a real HTTP/1.1 server on 127.0.0.1 with scripted routes,
//! and helpers to run the real `newswatch` binary against a temporary config.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A handler that writes whatever it likes to the connection.
pub type RawHandler = Arc<dyn Fn(&mut TcpStream) -> std::io::Result<()> + Send + Sync>;

/// What a route answers.
#[derive(Clone)]
pub enum Route {
    /// Hand-written response bytes (hostile servers).
    Raw(RawHandler),
    /// 200 with this body; answers 304 when If-None-Match equals `etag`.
    Feed { body: Vec<u8>, etag: Option<String> },
    /// A bare status code with a short body.
    Status(u16),
    /// 200 with bytes that are not a feed.
    Garbage(Vec<u8>),
    /// Accepts the connection and never answers.
    Hang,
    /// A redirect (301, 302, 307, 308) to `location`.
    Redirect { status: u16, location: String },
    /// An error status with a `Retry-After` header (seconds).
    RetryAfter { status: u16, seconds: u64 },
    /// A feed answered after a delay.
    Slow { delay: Duration, body: Vec<u8> },
}

/// One request the server received.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub at: std::time::Instant,
    pub method: String,
    pub body: Vec<u8>,
}

/// A local HTTP server that records what it receives.
pub struct TestServer {
    pub addr: SocketAddr,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        let routes: Arc<Mutex<HashMap<String, Route>>> = Arc::default();
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let (r, log) = (routes.clone(), received.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, log) = (r.clone(), log.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &r, &log);
                });
            }
        });
        TestServer {
            addr,
            routes,
            received,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn route(&self, path: &str, route: Route) {
        self.routes.lock().unwrap().insert(path.to_string(), route);
    }

    pub fn requests(&self, path: &str) -> Vec<Received> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

fn serve(
    stream: TcpStream,
    routes: &Mutex<HashMap<String, Route>>,
    log: &Mutex<Vec<Received>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let method = line.split_whitespace().next().unwrap_or("GET").to_string();
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length.min(1 << 20)];
    std::io::Read::read_exact(&mut reader, &mut body)?;
    log.lock().unwrap().push(Received {
        path: path.clone(),
        headers: headers.clone(),
        at: std::time::Instant::now(),
        method,
        body,
    });
    let route = routes.lock().unwrap().get(&path).cloned();
    let mut stream = stream;
    let respond =
        |stream: &mut TcpStream, status: &str, extra: &str, body: &[u8]| -> std::io::Result<()> {
            write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
                body.len()
            )?;
            stream.write_all(body)?;
            stream.flush()
        };
    match route {
        None => respond(&mut stream, "404 Not Found", "", b"not found"),
        Some(Route::Feed { body, etag }) => {
            if let (Some(tag), Some(sent)) = (&etag, headers.get("if-none-match"))
                && tag == sent
            {
                return respond(
                    &mut stream,
                    "304 Not Modified",
                    &format!("ETag: {tag}\r\n"),
                    b"",
                );
            }
            let extra = match &etag {
                Some(tag) => format!("Content-Type: application/rss+xml\r\nETag: {tag}\r\n"),
                None => "Content-Type: application/rss+xml\r\n".to_string(),
            };
            respond(&mut stream, "200 OK", &extra, &body)
        }
        Some(Route::Status(code)) => respond(
            &mut stream,
            &format!("{code} Scripted"),
            "",
            b"scripted failure",
        ),
        Some(Route::Garbage(bytes)) => respond(
            &mut stream,
            "200 OK",
            "Content-Type: application/rss+xml\r\n",
            &bytes,
        ),
        Some(Route::Redirect { status, location }) => respond(
            &mut stream,
            &format!("{status} Redirect"),
            &format!("Location: {location}\r\n"),
            b"",
        ),
        Some(Route::RetryAfter { status, seconds }) => respond(
            &mut stream,
            &format!("{status} Busy"),
            &format!("Retry-After: {seconds}\r\n"),
            b"busy",
        ),
        Some(Route::Slow { delay, body }) => {
            std::thread::sleep(delay);
            respond(
                &mut stream,
                "200 OK",
                "Content-Type: application/rss+xml\r\n",
                &body,
            )
        }
        Some(Route::Raw(handler)) => handler(&mut stream),
        Some(Route::Hang) => {
            std::thread::sleep(Duration::from_secs(120));
            Ok(())
        }
    }
}

/// A fixture file's text with `{{RECENT}}` / `{{OLD}}` replaced by RFC 2822
/// dates one hour and thirty days ago.
pub fn fixture_feed(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/feeds")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let now = chrono::Utc::now();
    text.replace(
        "{{RECENT}}",
        &(now - chrono::Duration::hours(1)).to_rfc2822(),
    )
    .replace("{{OLD}}", &(now - chrono::Duration::days(30)).to_rfc2822())
    .into_bytes()
}

/// A scratch directory with a config file, and the binary run against it.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("newswatch.toml")
    }

    pub fn log_path(&self) -> PathBuf {
        self.path("state/alerts.jsonl")
    }

    /// Writes a config whose state lives in this sandbox, desktop off, with
    /// `body` (feeds, rules, extra sections) appended.
    pub fn write_config(&self, body: &str) {
        let text = format!(
            "[state]\ndir = \"{}\"\n\n[notify]\ndesktop = false\n\n[fetch]\ntimeout = \"3s\"\nconnect_timeout = \"2s\"\n\n{body}",
            self.path("state").display()
        );
        std::fs::write(self.config_path(), text).unwrap();
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_newswatch"));
        cmd.arg("--config")
            .arg(self.config_path())
            .args(args)
            .env("XDG_CONFIG_HOME", self.path("xdg-config"))
            .env("XDG_STATE_HOME", self.path("xdg-state"))
            .env_remove("NEWSWATCH_CONFIG")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("RUST_LOG", "newswatch=info");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run newswatch")
    }

    /// The alert log's lines as JSON values (empty when there is no log).
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        match std::fs::read_to_string(self.log_path()) {
            Ok(text) => text
                .lines()
                .map(|l| {
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("bad log line {l:?}: {e}"))
                })
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A local server with the world-news fixture at `/world.xml` (no ETag).
pub fn world_server() -> TestServer {
    let server = TestServer::start();
    server.route(
        "/world.xml",
        Route::Feed {
            body: fixture_feed("world-news.xml"),
            etag: None,
        },
    );
    server
}

/// The two rules of the built-in config, so tests exercise the shipped queries.
pub fn builtin_rules() -> String {
    let builtin = include_str!("../../config/newswatch.toml");
    let start = builtin
        .find("[[rules]]")
        .expect("the built-in config has rules");
    builtin[start..].to_string()
}

/// Polls `done` every 100 ms until it holds; fails the test after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the daemon in `sandbox` until `done` or twenty seconds, then stops
/// it with SIGTERM; its stderr and how long the stop took.
pub fn run_until(sandbox: &Sandbox, mut done: impl FnMut() -> bool) -> (String, Duration) {
    let mut child = sandbox
        .command(&["run"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !done() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let stopping = std::time::Instant::now();
    let status = child.wait().unwrap();
    let stopped_in = stopping.elapsed();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    (err, stopped_in)
}
