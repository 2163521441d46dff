//! Configuration text → `Config::from_str`, what `newswatch check` runs: every
//! input is either a validated configuration (with its summary) or located
//! diagnostics that render.

#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use newswatch::commands::check_summary;
use newswatch::config::{Config, ConfigError, Origin};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A directory that does not exist: relative entity files are not found.
    let origin = Origin::File(PathBuf::from("/nonexistent/newswatch-fuzz/newswatch.toml"));
    match Config::from_str(text, origin) {
        Ok(config) => {
            let _ = check_summary(&config);
        }
        Err(ConfigError::Invalid(diagnostics)) => {
            assert!(!diagnostics.is_empty(), "invalid without a diagnostic");
            for d in &diagnostics {
                assert!(!d.message.is_empty() && d.line >= 1 && d.col >= 1, "{d:?}");
            }
            let _ = ConfigError::Invalid(diagnostics).to_string();
        }
        Err(other) => panic!("from_str read no file, yet: {other}"),
    }
});
