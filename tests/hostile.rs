//! Hostile servers and ill-formed feeds: each is cut off by a limit with a
//! clear error naming the feed, memory stays bounded, and the other feeds are
//! still served on time.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Route, Sandbox, TestServer, builtin_rules, fixture_feed, stderr};

fn raw(
    handler: impl Fn(&mut std::net::TcpStream) -> std::io::Result<()> + Send + Sync + 'static,
) -> Route {
    Route::Raw(Arc::new(handler))
}

/// 64 MB of zeros, gzip-compressed (about 64 KB on the wire).
fn gzip_bomb() -> Vec<u8> {
    let out = std::process::Command::new("sh")
        .args(["-c", "head -c 67108864 /dev/zero | gzip -9 -c"])
        .output()
        .expect("gzip is available");
    assert!(out.status.success() && out.stdout.len() < 1 << 20);
    out.stdout
}

#[test]
fn hostile_servers_are_cut_off_and_the_good_feed_still_alerts() {
    let server = TestServer::start();
    server.route(
        "/good.xml",
        Route::Feed {
            body: fixture_feed("world-news.xml"),
            etag: None,
        },
    );
    let bomb = gzip_bomb();
    server.route(
        "/bomb.xml",
        raw(move |s| {
            write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                bomb.len()
            )?;
            s.write_all(&bomb)
        }),
    );
    server.route(
        "/endless.xml",
        raw(|s| {
            write!(s, "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nTransfer-Encoding: chunked\r\n\r\n")?;
            let chunk = vec![b'<'; 64 * 1024];
            loop {
                write!(s, "{:x}\r\n", chunk.len())?;
                s.write_all(&chunk)?;
                s.write_all(b"\r\n")?;
            }
        }),
    );
    server.route(
        "/drip.xml",
        raw(|s| {
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n<rss version=\"2.0\">")?;
            loop {
                s.write_all(b" ")?;
                std::thread::sleep(Duration::from_millis(500));
            }
        }),
    );
    server.route(
        "/huge-length.xml",
        raw(|s| {
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10737418240\r\n\r\n<rss")?;
            std::thread::sleep(Duration::from_secs(5));
            Ok(())
        }),
    );
    let laughs = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title>
<item><guid>l1</guid><title>&lol9;</title><description>&lol9;</description></item>
</channel></rss>"#;
    server.route(
        "/laughs.xml",
        Route::Feed {
            body: laughs.to_vec(),
            etag: None,
        },
    );

    let sandbox = Sandbox::new();
    let paths = [
        "/bomb.xml",
        "/endless.xml",
        "/drip.xml",
        "/huge-length.xml",
        "/laughs.xml",
        "/good.xml",
    ];
    let feeds: String = paths
        .iter()
        .map(|p| format!("[[feeds]]\nurl = \"{}\"\n\n", server.url(p)))
        .collect();
    sandbox.write_config(&format!("{feeds}{}", builtin_rules()));
    // A smaller cap than the default 16 MiB keeps the test quick.
    let config = std::fs::read_to_string(sandbox.config_path())
        .unwrap()
        .replacen(
            "[fetch]\n",
            "[fetch]\nmax_bytes = 1048576\nper_host = 8\n",
            1,
        );
    std::fs::write(sandbox.config_path(), config).unwrap();

    let started = Instant::now();
    let out = sandbox.run(&["once"]);
    let elapsed = started.elapsed();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}: {err}");
    assert_eq!(sandbox.alerts().len(), 2, "the good feed alerted: {err}");
    let expect = |path: &str, cause: &str| {
        let line = format!("feed {}: {cause}", server.url(path));
        assert!(err.contains(&line), "missing {line:?} in:\n{err}");
    };
    expect("/bomb.xml", "response larger than the 1048576-byte limit");
    expect(
        "/endless.xml",
        "response larger than the 1048576-byte limit",
    );
    expect("/drip.xml", "timed out");
    expect(
        "/huge-length.xml",
        "response larger than the 1048576-byte limit",
    );
    // Entity expansion is not performed: the feed either reads with literal
    // text or fails cleanly, never expands to gigabytes.
    let state_size: u64 = std::fs::read_dir(sandbox.path("state"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(state_size < 10 << 20, "state grew to {state_size} bytes");
}

#[test]
fn ill_formed_feeds_yield_items_or_a_clear_error() {
    let dir = format!("{}/tests/fixtures/ill-formed", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        let bytes = std::fs::read(format!("{dir}/{name}")).unwrap();
        let result = std::panic::catch_unwind(|| {
            newswatch::feed::parse_feed(&bytes, "https://example.org/feed")
        });
        let parsed = result.unwrap_or_else(|_| panic!("{name}: parse panicked"));
        match (name.starts_with("error-"), parsed) {
            (true, Err(e)) => assert!(
                e.to_string().starts_with("not a readable feed: "),
                "{name}: {e}"
            ),
            (false, Ok(feed)) => {
                assert!(!feed.items.is_empty(), "{name}: no items");
                for item in &feed.items {
                    let doc = newswatch::document::Document::new(
                        &item.title,
                        &item.summary,
                        &item.content,
                        &newswatch::entities::Gazetteer::empty(),
                    );
                    assert!(doc.len_bytes() < 1 << 24, "{name}");
                }
            }
            (true, Ok(feed)) => panic!("{name}: expected an error, got {} items", feed.items.len()),
            (false, Err(e)) => panic!("{name}: expected items, got {e}"),
        }
    }
}

#[test]
fn thousands_of_items_and_an_enormous_item_are_processed() {
    let sandbox = Sandbox::new();
    let date = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc2822();
    let mut xml = String::from("<rss version=\"2.0\"><channel><title>Big</title>");
    for i in 0..5000 {
        xml.push_str(&format!(
            "<item><guid>i{i}</guid><title>Item {i} on harvest prices</title><pubDate>{date}</pubDate></item>"
        ));
    }
    // One item of 8 MB of text, with the matching words at its very end.
    let filler = "Markets were calm and trading was thin. ".repeat(200_000);
    xml.push_str(&format!(
        "<item><guid>huge</guid><title>Long read</title><pubDate>{date}</pubDate><description>{filler} Foreign troops were deployed to the border by Russia and Belarus.</description></item>"
    ));
    xml.push_str("</channel></rss>");
    let feed = sandbox.path("big.xml");
    std::fs::write(&feed, xml).unwrap();
    sandbox.write_config(&format!(
        "[[feeds]]\nurl = \"{}\"\n\n{}",
        feed.display(),
        builtin_rules()
    ));
    let started = Instant::now();
    let out = sandbox.run(&["once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    let alerts = sandbox.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["item"]["key"], "huge");
    let out = sandbox.run(&["feeds", "--json"]);
    let row: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(row["items_seen"], 5001);
}
