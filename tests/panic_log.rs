//! A panic is one log event in the log's own format (here JSON), with its
//! message, thread and location, not lines of plain text on stderr.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// A writer into a shared buffer, for the subscriber.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn panics_are_logged_as_one_json_event_each() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    newswatch::panics::log_panics();

    let caught = std::panic::catch_unwind(|| panic!("the parser gave up on item {}", 42));
    assert!(caught.is_err());
    let line = line!() - 2;
    let worker = std::thread::Builder::new()
        .name("feed-worker".into())
        .spawn(|| panic!("static message"))
        .unwrap();
    assert!(worker.join().is_err(), "the thread still unwinds");
    // The default hook again, so that a failed assertion below is printed.
    drop(std::panic::take_hook());

    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(events.len(), 2, "{text}");
    for event in &events {
        assert_eq!(event["level"], "ERROR", "{event}");
    }
    let first = &events[0]["fields"];
    assert_eq!(first["message"], "panicked: the parser gave up on item 42");
    let location = first["location"].as_str().unwrap();
    assert!(
        location.starts_with(&format!("tests/panic_log.rs:{line}:")),
        "{location}"
    );
    let second = &events[1]["fields"];
    assert_eq!(second["message"], "panicked: static message");
    assert_eq!(second["thread"], "feed-worker");
}
