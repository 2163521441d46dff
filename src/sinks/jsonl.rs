//! The alert log: one JSON object per line, appended and flushed line by line.

use std::collections::{HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Bytes read from the end of the log on open to learn which ids it already holds.
const TAIL_SCAN_BYTES: u64 = 1 << 20;
/// Ids remembered from the tail of the log and from this run.
const REMEMBERED_IDS: usize = 16_384;

/// An append-only JSONL file.
#[derive(Debug)]
pub struct JsonlSink {
    path: PathBuf,
    file: Option<File>,
    recent: HashSet<String>,
    order: VecDeque<String>,
}

impl JsonlSink {
    /// Prepares the log at `path` (created on first write) and reads the ids at its end.
    pub fn open(path: &Path) -> std::io::Result<JsonlSink> {
        let mut sink = JsonlSink {
            path: path.to_path_buf(),
            file: None,
            recent: HashSet::new(),
            order: VecDeque::new(),
        };
        for id in tail_ids(path)? {
            sink.remember(id);
        }
        Ok(sink)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether an alert with this id is known to be in the log already.
    pub fn contains(&self, id: &str) -> bool {
        self.recent.contains(id)
    }

    fn remember(&mut self, id: String) {
        if self.recent.insert(id.clone()) {
            self.order.push_back(id);
            if self.order.len() > REMEMBERED_IDS {
                if let Some(old) = self.order.pop_front() {
                    self.recent.remove(&old);
                }
            }
        }
    }

    /// Appends `json` and a newline in one write, then flushes it to disk.
    pub fn append(&mut self, id: &str, json: &str) -> std::io::Result<()> {
        let mut line = String::with_capacity(json.len() + 1);
        line.push_str(json);
        line.push('\n');
        let result = self.file().and_then(|f| {
            f.write_all(line.as_bytes())?;
            f.sync_data()
        });
        if let Err(e) = result {
            // Reopen next time: the file may have been rotated or the disk freed.
            self.file = None;
            return Err(e);
        }
        self.remember(id.to_string());
        Ok(())
    }

    fn file(&mut self) -> std::io::Result<&mut File> {
        // Reopen when the path no longer points at our file (logrotate renamed it).
        if let Some(file) = &self.file {
            let ours = file.metadata().ok();
            let current = std::fs::metadata(&self.path).ok();
            let same = match (ours, current) {
                (Some(a), Some(b)) => {
                    use std::os::unix::fs::MetadataExt;
                    a.ino() == b.ino() && a.dev() == b.dev()
                }
                _ => false,
            };
            if !same {
                self.file = None;
            }
        }
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir)?;
                }
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.file = Some(file);
        }
        Ok(self.file.as_mut().expect("the file was opened just above"))
    }
}

/// The `id` fields of the complete lines at the end of the log.
fn tail_ids(path: &Path) -> std::io::Result<Vec<String>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_SCAN_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let mut lines = tail.split(|&b| b == b'\n');
    if start > 0 {
        lines.next(); // partial first line
    }
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: String,
    }
    Ok(lines
        .filter_map(|line| serde_json::from_slice::<IdOnly>(line).ok())
        .map(|l| l.id)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_lines_and_remembers_ids_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/alerts.jsonl");
        let mut sink = JsonlSink::open(&path).unwrap();
        sink.append("a", r#"{"id":"a"}"#).unwrap();
        sink.append("b", r#"{"id":"b"}"#).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"id\":\"a\"}\n{\"id\":\"b\"}\n"
        );
        let sink = JsonlSink::open(&path).unwrap();
        assert!(sink.contains("a") && sink.contains("b") && !sink.contains("c"));
    }

    #[test]
    fn follows_a_renamed_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        let mut sink = JsonlSink::open(&path).unwrap();
        sink.append("a", r#"{"id":"a"}"#).unwrap();
        std::fs::rename(&path, dir.path().join("alerts.jsonl.1")).unwrap();
        sink.append("b", r#"{"id":"b"}"#).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"id\":\"b\"}\n");
    }
}
