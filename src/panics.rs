//! Panics reported as log events.
//!
//! newswatch survives some panics: one in the feed parser becomes that
//! feed's error, and one in a task ends only that task. Rust's default panic
//! hook still writes each to stderr as lines of plain text, outside the log's
//! format, where a JSON log gets lines no log shipper can parse. After
//! [`log_panics`], a panic is one `tracing` event at ERROR level instead, in
//! whatever format the log is written.

use std::any::Any;
use std::backtrace::{Backtrace, BacktraceStatus};

/// The message a panic was raised with (its payload, when that is text).
pub fn message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Reports every panic from now on as an ERROR event with its message,
/// thread and source location, and a backtrace where `RUST_BACKTRACE` asks
/// for one. Call it once the log is set up; the process still unwinds (or
/// exits) as before.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let message = message(info.payload());
        let location = info.location().map(ToString::to_string);
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("unnamed");
        let backtrace = Backtrace::capture();
        if backtrace.status() == BacktraceStatus::Captured {
            tracing::error!(
                thread,
                location,
                backtrace = %backtrace,
                "panicked: {message}"
            );
        } else {
            tracing::error!(thread, location, "panicked: {message}");
        }
    }));
}
