//! newswatch: a streaming news-feed monitor.
//!
//! The pipeline, stage by stage: [`config`] → [`daemon`] (scheduling) →
//! [`fetch`] → [`feed`] (parse) → [`text`] and [`document`] (normalize) →
//! [`store`] (dedup, state) → [`entities`] → [`rules`] → [`alerts`] →
//! [`sinks`]. [`pipeline`] runs one poll of one feed through all of them.

pub mod alerts;
pub mod commands;
pub mod config;
pub mod config_edit;
pub mod daemon;
pub mod document;
pub mod entities;
pub mod feed;
pub mod fetch;
pub mod memory;
pub mod metrics;
pub mod opml;
pub mod panics;
pub mod pipeline;
pub mod rules;
pub mod sinks;
pub mod store;
pub mod stories;
pub mod text;

/// Helpers shared by unit tests.
#[cfg(test)]
pub(crate) mod testing {
    /// Makes a named pipe (FIFO) at `path`, with mkfifo(1).
    pub fn mkfifo(path: &std::path::Path) {
        let made = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("mkfifo runs");
        assert!(made.success(), "mkfifo {}", path.display());
    }
}
