//! Desktop notifications over a real D-Bus session bus.
//!
//! Each test starts its own `dbus-daemon` (a hermetic session-type config: no
//! service activation, so nothing but the test can own
//! `org.freedesktop.Notifications`) and, where wanted, a recording
//! notification server written with zbus. newswatch is driven for real: the
//! library's `DesktopSink` in this process, and the `newswatch` binary as a
//! child process pointed at the private bus.
//!
//! The notification server is written against zbus' low-level message API
//! rather than `#[zbus::interface]` / `Builder::serve_at`: the zbus
//! dev-dependency is built without its `service` feature (only `tokio`, plus
//! the `proxy` that notify-rust enables), so neither is compiled in.
//!
//! `DBUS_SESSION_BUS_ADDRESS` is process-wide state: every test here takes
//! [`serial`] first, and only the tests of the library sink change the variable.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use newswatch::alerts::Alert;
use newswatch::sinks::desktop::{DesktopSink, notification};
use zbus::OwnedVariant;
use zbus::message::Type as MessageType;

use common::{Sandbox, builtin_rules, fixture_feed, stderr};

const NOTIFICATIONS_NAME: &str = "org.freedesktop.Notifications";
const NOTIFICATIONS_PATH: &str = "/org/freedesktop/Notifications";
const WARNING: &str = "desktop notifications unavailable";
const CAPABILITIES: [&str; 3] = ["body", "body-markup", "actions"];
const SERVER_INFO: (&str, &str, &str, &str) = ("recorder", "newswatch-tests", "1.0", "1.2");

/// The example line of the README's "The alert log" section, on one line.
const README_ALERT: &str = r#"{"v":1,"id":"01M89WNZC0V372GS4S62A5XC6C","ts":"2026-11-25T17:40:00Z","rule":"troop-deployment","title":"Foreign troops deployed","severity":"high","item":{"key":"wn-001","title":"Kyiv says Pyongyang has sent soldiers to fight alongside Russian forces","link":"https://news.example.org/world/wn-001","published":"2026-11-25T16:40:00Z","feed":{"url":"https://news.example.org/world.xml","name":"Test World Desk"}},"story":"5c1b0e8f3a2d9c47","sources":1,"matches":[{"term":"soldiers","field":"summary","snippet":"…North Korea has sent several thousand soldiers to the Kursk region…"}],"entities":[{"name":"Ukraine","kind":"country","count":3},{"name":"North Korea","kind":"country","count":2}]}"#;

// --- serialization -----------------------------------------------------------

static SERIAL: Mutex<()> = Mutex::new(());

/// Serializes the tests of this binary (they share the process environment).
fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Sets `DBUS_SESSION_BUS_ADDRESS` for this process.
fn set_session_bus(address: &str) {
    // SAFETY: every test of this binary holds `serial()` while it runs, and no
    // thread started by a test reads the environment concurrently: the zbus
    // client reads it only inside `DesktopSink::notify`, awaited by the test
    // itself, and child processes get their environment from `Command::env`
    // in the same thread.
    unsafe { std::env::set_var("DBUS_SESSION_BUS_ADDRESS", address) };
}

// --- a private bus -------------------------------------------------------------

/// A private `dbus-daemon`, killed and reaped on drop.
struct Bus {
    child: Child,
    address: String,
    _stdout: BufReader<ChildStdout>,
    _dir: tempfile::TempDir,
}

impl Bus {
    fn start() -> Bus {
        let dir = tempfile::tempdir().expect("tempdir for the bus");
        let socket = dir.path().join("bus");
        let config = dir.path().join("session.conf");
        let log = dir.path().join("dbus-daemon.log");
        // A session bus like /usr/share/dbus-1/session.conf, minus service
        // directories and includes: a name is owned only if a test owns it.
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )
        .expect("write bus config");
        let program = if Path::new("/usr/bin/dbus-daemon").exists() {
            "/usr/bin/dbus-daemon"
        } else {
            "dbus-daemon"
        };
        let mut child = Command::new(program)
            .arg("--nofork")
            .arg("--nopidfile")
            .arg(format!("--config-file={}", config.display()))
            .arg("--print-address=1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("bus log file"))
            .spawn()
            .expect("start dbus-daemon");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        let read = stdout.read_line(&mut line);
        let address = line.trim().to_string();
        let bus = Bus {
            child,
            address,
            _stdout: stdout,
            _dir: dir,
        };
        assert!(
            read.is_ok() && bus.address.starts_with("unix:"),
            "dbus-daemon printed no address: {read:?} {line:?}; its stderr: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        bus
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- a recording notification server ----------------------------------------------

/// One `Notify` call as the server received it.
#[derive(Debug)]
struct Notified {
    app_name: String,
    replaces_id: u32,
    app_icon: String,
    summary: String,
    body: String,
    actions: Vec<String>,
    hints: HashMap<String, OwnedVariant>,
    expire_timeout: i32,
}

impl Notified {
    /// The `urgency` hint, which must be a byte.
    fn urgency(&self) -> u8 {
        let hint = self
            .hints
            .get("urgency")
            .unwrap_or_else(|| panic!("no urgency hint: {self:?}"));
        u8::try_from(hint).unwrap_or_else(|e| panic!("urgency is not a byte ({e}): {hint:?}"))
    }
}

type NotifyArgs = (
    String,
    u32,
    String,
    String,
    String,
    Vec<String>,
    HashMap<String, OwnedVariant>,
    i32,
);

#[derive(Default)]
struct Record {
    /// When set, a notification offering the "default" action is clicked.
    click: bool,
    notified: Vec<Notified>,
    closed: Vec<u32>,
    /// Every method call, as "interface.member".
    calls: Vec<String>,
}

/// org.freedesktop.Notifications on a bus, recording what it is asked.
struct NotificationServer {
    record: Arc<Mutex<Record>>,
    task: tokio::task::JoinHandle<()>,
}

impl NotificationServer {
    /// Owns the name on the bus at `address` and answers on `NOTIFICATIONS_PATH`.
    async fn start(address: &str) -> NotificationServer {
        NotificationServer::start_with(address, &CAPABILITIES).await
    }

    /// Like [`NotificationServer::start`], advertising `capabilities`.
    async fn start_with(address: &str, capabilities: &[&str]) -> NotificationServer {
        let conn = zbus::connection::Builder::address(address)
            .name(NOTIFICATIONS_NAME)
            .build()
            .await
            .expect("connect the notification server to the private bus");
        // Nothing calls the server before `start` returns, so no call can
        // slip in between owning the name and subscribing here.
        let stream = zbus::MessageStream::from(&conn);
        let record = Arc::new(Mutex::new(Record::default()));
        let capabilities = capabilities.iter().map(|c| c.to_string()).collect();
        let task = tokio::spawn(serve(conn, stream, capabilities, record.clone()));
        NotificationServer { record, task }
    }

    fn record(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap()
    }

    fn count(&self) -> usize {
        self.record().notified.len()
    }
}

impl Drop for NotificationServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    conn: zbus::Connection,
    mut stream: zbus::MessageStream,
    capabilities: Vec<String>,
    record: Arc<Mutex<Record>>,
) {
    let mut next_id = 1u32;
    while let Some(msg) = stream.next().await {
        let Ok(msg) = msg else { continue };
        let header = msg.header();
        if header.message_type() != MessageType::MethodCall {
            continue;
        }
        let interface = header.interface().map(|i| i.as_str().to_string());
        let member = header.member().map(|m| m.as_str().to_string());
        let path = header.path().map(|p| p.as_str().to_string());
        record.lock().unwrap().calls.push(format!(
            "{}.{}",
            interface.as_deref().unwrap_or(""),
            member.as_deref().unwrap_or("")
        ));
        let ours = matches!(interface.as_deref(), None | Some(NOTIFICATIONS_NAME));
        let result = match (path.as_deref(), ours, member.as_deref()) {
            (Some(NOTIFICATIONS_PATH), true, Some("Notify")) => {
                match msg.body().deserialize::<NotifyArgs>() {
                    Ok((
                        app_name,
                        replaces_id,
                        app_icon,
                        summary,
                        body,
                        actions,
                        hints,
                        expire_timeout,
                    )) => {
                        let id = if replaces_id != 0 {
                            replaces_id
                        } else {
                            next_id += 1;
                            next_id - 1
                        };
                        let click =
                            record.lock().unwrap().click && actions.iter().any(|a| a == "default");
                        record.lock().unwrap().notified.push(Notified {
                            app_name,
                            replaces_id,
                            app_icon,
                            summary,
                            body,
                            actions,
                            hints,
                            expire_timeout,
                        });
                        let replied = conn.reply(&header, &id).await;
                        if let (true, Some(sender)) = (click, header.sender()) {
                            // The user clicks a moment after the bubble appears.
                            let conn = conn.clone();
                            let sender = sender.to_owned();
                            tokio::spawn(async move {
                                tokio::time::sleep(Duration::from_millis(300)).await;
                                let _ = conn
                                    .emit_signal(
                                        Some(sender),
                                        NOTIFICATIONS_PATH,
                                        NOTIFICATIONS_NAME,
                                        "ActionInvoked",
                                        &(id, "default"),
                                    )
                                    .await;
                            });
                        }
                        replied
                    }
                    Err(e) => {
                        conn.reply_error(
                            &header,
                            "org.freedesktop.DBus.Error.InvalidArgs",
                            &e.to_string(),
                        )
                        .await
                    }
                }
            }
            (Some(NOTIFICATIONS_PATH), true, Some("GetCapabilities")) => {
                conn.reply(&header, &capabilities).await
            }
            (Some(NOTIFICATIONS_PATH), true, Some("GetServerInformation")) => {
                conn.reply(&header, &SERVER_INFO).await
            }
            (Some(NOTIFICATIONS_PATH), true, Some("CloseNotification")) => {
                match msg.body().deserialize::<u32>() {
                    Ok(id) => {
                        record.lock().unwrap().closed.push(id);
                        conn.reply(&header, &()).await
                    }
                    Err(e) => {
                        conn.reply_error(
                            &header,
                            "org.freedesktop.DBus.Error.InvalidArgs",
                            &e.to_string(),
                        )
                        .await
                    }
                }
            }
            (_, _, Some("Ping")) if interface.as_deref() == Some("org.freedesktop.DBus.Peer") => {
                conn.reply(&header, &()).await
            }
            _ => {
                conn.reply_error(
                    &header,
                    "org.freedesktop.DBus.Error.UnknownMethod",
                    &format!("no method {interface:?}.{member:?} at {path:?}"),
                )
                .await
            }
        };
        if let Err(e) = result {
            eprintln!("notification server: cannot reply: {e}");
        }
    }
}

// --- alerts and the binary ---------------------------------------------------------

/// An alert parsed from the README's example line after `edit`.
fn alert_with(edit: impl FnOnce(&mut serde_json::Value)) -> Alert {
    let mut value: serde_json::Value = serde_json::from_str(README_ALERT).unwrap();
    edit(&mut value);
    let line = serde_json::to_string(&value).unwrap();
    assert!(!line.contains('\n'));
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not an alert line ({e}): {line}"))
}

fn alert_of_severity(severity: &str) -> Alert {
    alert_with(|a| a["severity"] = severity.into())
}

/// A sandbox with the world-news fixture as a `file://` feed and `body`
/// (`[notify]` settings and rules) in its config.
fn sandbox_with(body: &str) -> Sandbox {
    let sandbox = Sandbox::new();
    let feed = sandbox.path("world.xml");
    std::fs::write(&feed, fixture_feed("world-news.xml")).unwrap();
    let text = format!(
        "[state]\ndir = \"{}\"\n\n[fetch]\ntimeout = \"3s\"\nconnect_timeout = \"2s\"\n\n\
         [[feeds]]\nurl = \"file://{}\"\nname = \"Test World Desk\"\n\n{body}",
        sandbox.path("state").display(),
        feed.display(),
    );
    std::fs::write(sandbox.config_path(), text).unwrap();
    sandbox
}

/// `newswatch once` with the session bus at `bus_address`, off the runtime's
/// worker threads so the notification server keeps answering.
async fn run_once(sandbox: &Sandbox, bus_address: &str) -> Output {
    let mut cmd = sandbox.command(&["once"]);
    // `Sandbox::command` removes the variable; put ours back after it.
    cmd.env("DBUS_SESSION_BUS_ADDRESS", bus_address);
    let started = Instant::now();
    let out = tokio::process::Command::from(cmd)
        .output()
        .await
        .expect("run newswatch once");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "`newswatch once` took {:?}",
        started.elapsed()
    );
    out
}

fn rules_of(alerts: &[serde_json::Value]) -> Vec<String> {
    let mut rules: Vec<String> = alerts
        .iter()
        .map(|a| a["rule"].as_str().unwrap().to_string())
        .collect();
    rules.sort();
    rules
}

// --- the library's sink ------------------------------------------------------------

#[test]
fn desktop_sink_sends_escaped_notifications_with_urgency_and_timeout() {
    let _serial = serial();
    let bus = Bus::start();
    set_session_bus(&bus.address);
    runtime().block_on(async {
        let server = NotificationServer::start(&bus.address).await;
        let mut sink = DesktopSink::new(0);

        // The README's example line, as it is.
        let alert: Alert = serde_json::from_str(README_ALERT).unwrap();
        sink.notify(&alert).await;
        {
            let record = server.record();
            assert_eq!(record.notified.len(), 1, "calls: {:?}", record.calls);
            let n = &record.notified[0];
            assert_eq!(n.app_name, "newswatch");
            assert_eq!(n.summary, "Foreign troops deployed");
            assert_eq!(
                n.body,
                "Kyiv says Pyongyang has sent soldiers to fight alongside Russian forces\n\
                 Test World Desk · 2026-11-25T16:40:00Z"
            );
            assert_eq!(n.app_icon, "dialog-information");
            assert_eq!(n.replaces_id, 0, "every alert is a new notification");
            assert!(n.actions.is_empty(), "{:?}", n.actions);
            assert_eq!(n.urgency(), 1, "high is normal urgency");
            assert_eq!(n.expire_timeout, 30_000, "high stays 30 s");
        }

        // Hostile feed text: markup and terminal escapes in the item title and
        // the feed name, escapes in the rule title.
        let hostile = alert_with(|a| {
            a["severity"] = "critical".into();
            a["title"] = "Red \u{1b}[2Jalert\u{7}".into();
            a["item"]["title"] = "<b>Tom & \"Jerry\"</b>\u{1b}[31m it's <i>on</i>".into();
            a["item"]["feed"]["name"] = "R&D <Desk>\u{1b}]0;pwned\u{7}".into();
        });
        sink.notify(&hostile).await;
        {
            let record = server.record();
            assert_eq!(record.notified.len(), 2, "calls: {:?}", record.calls);
            let n = &record.notified[1];
            assert_eq!(n.summary, "Red alert", "escapes stripped from the summary");
            assert_eq!(
                n.body,
                "&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt; it&#39;s &lt;i&gt;on&lt;/i&gt;\n\
                 R&amp;D &lt;Desk&gt; · 2026-11-25T16:40:00Z"
            );
            for text in [&n.summary, &n.body] {
                assert!(
                    !text.chars().any(|c| c.is_control() && c != '\n'),
                    "control characters reached the server: {text:?}"
                );
            }
            assert!(!n.body.contains('<') && !n.body.contains('>'));
            assert_eq!(n.urgency(), 2, "critical is critical urgency");
            assert_eq!(n.expire_timeout, 0, "critical never expires");
        }

        // Severity → (urgency, expire_timeout), as src/sinks/desktop.rs maps it.
        let table = [
            ("critical", 2, 0),
            ("high", 1, 30_000),
            ("medium", 1, -1),
            ("low", 0, -1),
            ("info", 0, -1),
        ];
        for (severity, _, _) in table {
            sink.notify(&alert_of_severity(severity)).await;
        }
        {
            let record = server.record();
            assert_eq!(record.notified.len(), 2 + table.len());
            for (n, (severity, urgency, timeout)) in record.notified[2..].iter().zip(table) {
                assert_eq!(n.urgency(), urgency, "{severity}: urgency");
                assert_eq!(n.expire_timeout, timeout, "{severity}: expire_timeout");
                assert_eq!(n.summary, "Foreign troops deployed");
            }
        }

        // No feed name → the feed URL; no publication date → the alert time.
        let bare = alert_with(|a| {
            a["item"]["feed"]["name"] = serde_json::Value::Null;
            a["item"]["published"] = serde_json::Value::Null;
            a["item"]["feed"]["url"] = "https://news.example.org/world.xml?a=1&b=2".into();
        });
        sink.notify(&bare).await;
        assert_eq!(
            server.record().notified.last().unwrap().body,
            "Kyiv says Pyongyang has sent soldiers to fight alongside Russian forces\n\
             https://news.example.org/world.xml?a=1&amp;b=2 · 2026-11-25T17:40:00Z"
        );

        // The bus goes away for a while: notify returns promptly, without
        // panicking, and the next one after it comes back is delivered.
        let before = server.count();
        set_session_bus("unix:path=/nonexistent/bus");
        let started = Instant::now();
        sink.notify(&alert).await;
        sink.notify(&alert).await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "a missing bus took {:?}",
            started.elapsed()
        );
        set_session_bus(&bus.address);
        sink.notify(&alert).await;
        assert_eq!(server.count(), before + 1, "delivered again after recovery");

        // The server itself answers the rest of the interface (checked through
        // the notification newswatch builds and a plain zbus client).
        let handle = notification(&alert, true)
            .show_async()
            .await
            .expect("notify through the recording server");
        let id = handle.id();
        handle.close_async().await;
        assert_eq!(server.record().closed, [id]);
        let client = zbus::connection::Builder::address(bus.address.as_str())
            .build()
            .await
            .unwrap();
        let caps: Vec<String> = client
            .call_method(
                Some(NOTIFICATIONS_NAME),
                NOTIFICATIONS_PATH,
                Some(NOTIFICATIONS_NAME),
                "GetCapabilities",
                &(),
            )
            .await
            .unwrap()
            .body()
            .deserialize()
            .unwrap();
        assert_eq!(caps, CAPABILITIES);
        let info: (String, String, String, String) = client
            .call_method(
                Some(NOTIFICATIONS_NAME),
                NOTIFICATIONS_PATH,
                Some(NOTIFICATIONS_NAME),
                "GetServerInformation",
                &(),
            )
            .await
            .unwrap()
            .body()
            .deserialize()
            .unwrap();
        assert_eq!(
            (
                info.0.as_str(),
                info.1.as_str(),
                info.2.as_str(),
                info.3.as_str()
            ),
            SERVER_INFO
        );
        drop(server);
    });
}

#[test]
fn desktop_sink_gives_up_on_a_server_that_never_answers() {
    let _serial = serial();
    let bus = Bus::start();
    set_session_bus(&bus.address);
    runtime().block_on(async {
        // Owns the name, never reads a message, never replies.
        let _silent = zbus::connection::Builder::address(bus.address.as_str())
            .name(NOTIFICATIONS_NAME)
            .build()
            .await
            .unwrap();
        let mut sink = DesktopSink::new(0);
        let started = Instant::now();
        sink.notify(&alert_of_severity("critical")).await;
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(4) && took < Duration::from_secs(8),
            "notify should give up after its 5 s timeout, took {took:?}"
        );
    });
}

// --- the binary, end to end ----------------------------------------------------------

#[test]
fn once_notifies_only_non_shadow_alerts_at_or_above_min_severity() {
    let _serial = serial();
    let bus = Bus::start();
    let sandbox = sandbox_with(&format!(
        "[notify]\ndesktop = true\nmin_severity = \"high\"\n\n{}\n\n\
         [[rules]]\nid = \"shadow-soldiers\"\ntitle = \"Shadow: soldiers\"\n\
         severity = \"critical\"\nquery = 'soldiers'\nshadow = true\n",
        builtin_rules()
    ));
    runtime().block_on(async {
        let server = NotificationServer::start(&bus.address).await;

        let out = run_once(&sandbox, &bus.address).await;
        let err = stderr(&out);
        assert!(out.status.success(), "{err}");
        assert!(!err.contains(WARNING), "{err}");

        let alerts = sandbox.alerts();
        assert_eq!(
            rules_of(&alerts),
            ["eu-summit", "shadow-soldiers", "troop-deployment"],
            "{alerts:#?}"
        );
        let shadow = alerts
            .iter()
            .find(|a| a["rule"] == "shadow-soldiers")
            .unwrap();
        assert_eq!(shadow["shadow"], true, "{shadow}");
        assert_eq!(shadow["severity"], "critical");
        for a in alerts.iter().filter(|a| a["rule"] != "shadow-soldiers") {
            assert!(a.get("shadow").is_none(), "{a}");
        }
        let troop = alerts
            .iter()
            .find(|a| a["rule"] == "troop-deployment")
            .unwrap();

        {
            let record = server.record();
            // Only the high alert: medium is below min_severity, and the
            // critical one comes from a shadow rule.
            assert_eq!(
                record.notified.len(),
                1,
                "{:#?}\ncalls: {:?}",
                record.notified,
                record.calls
            );
            let n = &record.notified[0];
            assert_eq!(n.app_name, "newswatch");
            assert_eq!(n.summary, "Foreign troops deployed");
            assert_eq!(
                n.body,
                format!(
                    "{}\nTest World Desk · {}",
                    troop["item"]["title"].as_str().unwrap(),
                    troop["item"]["published"].as_str().unwrap()
                )
            );
            assert!(n.body.contains("Kyiv says Pyongyang has sent soldiers"));
            assert_eq!(n.urgency(), 1);
            assert_eq!(n.expire_timeout, 30_000);
        }

        // Nothing is new the second time: no alert, no notification.
        let again = run_once(&sandbox, &bus.address).await;
        assert!(again.status.success(), "{}", stderr(&again));
        assert_eq!(sandbox.alerts().len(), 3);
        assert_eq!(server.count(), 1, "a repeated poll notified again");
    });
}

/// Runs `once` (min_severity info, so both built-in alerts try to notify)
/// with the session bus at `address`; checks the log and the single warning.
async fn once_without_server_warns_once(address: &str) {
    let sandbox = sandbox_with(&format!(
        "[notify]\ndesktop = true\nmin_severity = \"info\"\n\n{}",
        builtin_rules()
    ));
    let out = run_once(&sandbox, address).await;
    let err = stderr(&out);
    assert!(out.status.success(), "exit {:?}\n{err}", out.status);
    assert_eq!(
        rules_of(&sandbox.alerts()),
        ["eu-summit", "troop-deployment"],
        "{err}"
    );
    assert_eq!(
        err.matches(WARNING).count(),
        1,
        "expected exactly one warning for two failed notifications:\n{err}"
    );
    assert!(!err.contains("work again"), "{err}");
}

#[test]
fn once_on_a_bus_without_notification_server_warns_once() {
    let _serial = serial();
    let bus = Bus::start();
    runtime().block_on(once_without_server_warns_once(&bus.address));
}

#[test]
fn once_without_a_session_bus_warns_once() {
    let _serial = serial();
    runtime().block_on(once_without_server_warns_once("unix:path=/nonexistent/bus"));
}

/// A server without the `body-markup` capability shows markup as text, so
/// newswatch asks for the capabilities and sends such a server plain text
/// (escaping would show up as a literal `Tom &amp; Jerry`).
#[test]
fn body_is_plain_text_for_a_server_without_body_markup() {
    let _serial = serial();
    let bus = Bus::start();
    set_session_bus(&bus.address);
    runtime().block_on(async {
        let server = NotificationServer::start_with(&bus.address, &["body"]).await;
        let alert = alert_with(|a| a["item"]["title"] = "Tom & Jerry <3".into());
        DesktopSink::new(0).notify(&alert).await;
        let record = server.record();
        assert_eq!(record.notified.len(), 1, "calls: {:?}", record.calls);
        assert!(
            record.notified[0].body.starts_with("Tom & Jerry <3\n"),
            "calls: {:?}, body: {:?}",
            record.calls,
            record.notified[0].body
        );
    });
}

/// A news storm: beyond the budget, notifications are held and summed up in
/// one "N more alerts" notification; nothing is notified twice.
#[test]
fn notification_budget_sums_up_the_overflow() {
    let _serial = serial();
    let bus = Bus::start();
    set_session_bus(&bus.address);
    runtime().block_on(async {
        let server = NotificationServer::start(&bus.address).await;
        let mut sink = DesktopSink::new(2);
        for (i, rule) in [
            "troop-deployment",
            "troop-deployment",
            "troop-deployment",
            "eu-summit",
            "troop-deployment",
        ]
        .iter()
        .enumerate()
        {
            let alert = alert_with(|a| {
                a["rule"] = (*rule).into();
                a["item"]["title"] = format!("Story {i}").into();
            });
            sink.notify(&alert).await;
        }
        assert_eq!(server.count(), 2, "the budget allows two a minute");
        assert!(sink.holding());
        // Within the minute the summary waits; forced (as before exiting) it goes out.
        sink.flush_held(false).await;
        assert_eq!(server.count(), 2);
        sink.flush_held(true).await;
        let record = server.record();
        assert_eq!(record.notified.len(), 3, "calls: {:?}", record.calls);
        assert_eq!(record.notified[2].summary, "3 more alerts");
        assert!(
            record.notified[2]
                .body
                .starts_with("troop-deployment ×2, eu-summit ×1"),
            "{:?}",
            record.notified[2].body
        );
        drop(record);
        assert!(!sink.holding());
    });
}

/// Clicking a notification opens the alert's link with the configured program.
#[test]
fn clicking_a_notification_opens_its_link() {
    let _serial = serial();
    let bus = Bus::start();
    set_session_bus(&bus.address);
    let dir = tempfile::tempdir().unwrap();
    let opened = dir.path().join("opened.txt");
    runtime().block_on(async {
        let server =
            NotificationServer::start_with(&bus.address, &["body", "body-markup", "actions"]).await;
        server.record().click = true;
        let script = format!("printf '%s\\n' \"$1\" >> '{}'", opened.display());
        let mut sink = DesktopSink::new(0).open_links_with(vec![
            "sh".into(),
            "-c".into(),
            script,
            "sh".into(),
        ]);
        let alert =
            alert_with(|a| a["item"]["link"] = "https://news.example.org/world/wn-001".into());
        sink.notify(&alert).await;
        let start = std::time::Instant::now();
        while !opened.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the link was never opened"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let actions = server.record().notified[0].actions.clone();
        assert_eq!(actions, ["default", "Open"]);

        // A link that is not http(s) never gets an action.
        let alert = alert_with(|a| a["item"]["link"] = "file:///etc/passwd".into());
        sink.notify(&alert).await;
        assert!(server.record().notified[1].actions.is_empty());
    });
    assert_eq!(
        std::fs::read_to_string(&opened).unwrap(),
        "https://news.example.org/world/wn-001\n"
    );
}
