//! The alert log: one JSON object per line, appended and flushed line by line.

use std::collections::{HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Bytes read from the end of the log on open to learn which ids it already holds.
const TAIL_SCAN_BYTES: u64 = 1 << 20;
/// Ids remembered from the tail of the log and from this run.
const REMEMBERED_IDS: usize = 16_384;

/// Size-based rotation: when the log would grow past `max_bytes`, it is
/// renamed to `.1` (older ones shift to `.2` … `.keep`) and a new file begins,
/// which `tail -F` follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub max_bytes: u64,
    pub keep: usize,
}

/// An append-only JSONL file.
#[derive(Debug)]
pub struct JsonlSink {
    path: PathBuf,
    rotation: Option<Rotation>,
    file: Option<File>,
    recent: HashSet<String>,
    order: VecDeque<String>,
    /// The ids at the end of the log are not known yet (it could not be read).
    unscanned: bool,
    /// The log is a regular file, not a device or a pipe (`/dev/stdout`):
    /// only a regular file is read back, repaired and synced to disk.
    regular: bool,
}

/// `alerts.jsonl.N`.
fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

impl JsonlSink {
    /// Prepares the log at `path` (created on first write) and reads the ids at
    /// its end (and at the end of the last rotated file). A log that cannot be
    /// read yet is not an error here: [`JsonlSink::scan`] is retried before
    /// every delivery until it succeeds, and alerts stay pending meanwhile.
    pub fn open(path: &Path, rotation: Option<Rotation>) -> JsonlSink {
        let mut sink = JsonlSink {
            path: path.to_path_buf(),
            rotation,
            file: None,
            recent: HashSet::new(),
            order: VecDeque::new(),
            unscanned: true,
            regular: true,
        };
        // A failure here is reported by the first delivery, which scans again.
        let _ = sink.scan();
        sink
    }

    /// Learns the ids at the end of the log and of its last rotated file (once).
    pub fn scan(&mut self) -> std::io::Result<()> {
        if !self.unscanned {
            return Ok(());
        }
        let mut ids = tail_ids(&numbered(&self.path, 1))?;
        ids.extend(tail_ids(&self.path)?);
        for id in ids {
            self.remember(id);
        }
        self.unscanned = false;
        Ok(())
    }

    fn rotate_if_needed(&mut self, incoming: u64) -> std::io::Result<()> {
        let Some(rotation) = self.rotation else {
            return Ok(());
        };
        let size = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        if size == 0 || size + incoming <= rotation.max_bytes {
            return Ok(());
        }
        self.file = None;
        for n in (1..rotation.keep.max(1)).rev() {
            let from = numbered(&self.path, n);
            if from.exists() {
                std::fs::rename(&from, numbered(&self.path, n + 1))?;
            }
        }
        if rotation.keep == 0 {
            std::fs::remove_file(&self.path)
        } else {
            std::fs::rename(&self.path, numbered(&self.path, 1))
        }
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
            if self.order.len() > REMEMBERED_IDS
                && let Some(old) = self.order.pop_front()
            {
                self.recent.remove(&old);
            }
        }
    }

    /// Appends `json` and a newline in one write, then flushes it to disk.
    pub fn append(&mut self, id: &str, json: &str) -> std::io::Result<()> {
        let mut line = String::with_capacity(json.len() + 1);
        line.push_str(json);
        line.push('\n');
        let result = self
            .scan()
            .and_then(|()| self.rotate_if_needed(line.len() as u64))
            .and_then(|()| self.file())
            .and_then(|f| f.write_all(line.as_bytes()))
            .and_then(|()| match (&self.file, self.regular) {
                // A pipe or a device cannot be synced (EINVAL): the line
                // went through with the write.
                (Some(file), true) => file.sync_data(),
                _ => Ok(()),
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
            if let Some(dir) = self.path.parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir)?;
            }
            // A pipe is opened for writing only: reading it too would keep
            // it open with no one to drain it.
            let meta = std::fs::metadata(&self.path).ok();
            self.regular = meta.as_ref().is_none_or(|m| m.is_file());
            let fifo =
                meta.is_some_and(|m| std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()));
            let mut file = if fifo {
                open_fifo(&self.path)?
            } else {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .read(self.regular)
                    .open(&self.path)?
            };
            // A line cut short (a full disk, a crash in another writer) must not
            // swallow the next one: finish it with a newline.
            let len = file.metadata()?.len();
            if self.regular && len > 0 {
                let mut last = [0u8; 1];
                file.seek(SeekFrom::Start(len - 1))?;
                file.read_exact(&mut last)?;
                if last[0] != b'\n' {
                    file.write_all(b"\n")?;
                }
            }
            self.file = Some(file);
        }
        Ok(self.file.as_mut().expect("the file was opened just above"))
    }
}

/// Opens the FIFO at `path` for writing without waiting for a reader,
/// which would hold up delivery (and the stop) for as long as none comes:
/// no reader is an error, so the alerts stay pending and delivery is tried
/// again later. The descriptor opened to ask is the one kept (closing it
/// would show a reader already waiting the end of the pipe), switched back
/// to blocking writes so that a line is written whole.
fn open_fifo(path: &Path) -> std::io::Result<File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ENXIO) {
                std::io::Error::other("it is a named pipe that nobody reads yet")
            } else {
                e
            }
        })?;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function owns, changing only its
    // status flags.
    let cleared = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) == 0
    };
    if !cleared {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file)
}

/// The `id` fields of the complete lines at the end of the log.
///
/// Only a regular file keeps lines to read back: a log pointed at a device
/// or a pipe (`/dev/stdout`, `/dev/full`) has none, and reading it could
/// block (a pipe) or never end (`/dev/zero`).
fn tail_ids(path: &Path) -> std::io::Result<Vec<String>> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Ok(Vec::new()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    }
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_SCAN_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    // Bounded, should the file grow while it is read.
    file.take(TAIL_SCAN_BYTES).read_to_end(&mut tail)?;
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
        let mut sink = JsonlSink::open(&path, None);
        sink.append("a", r#"{"id":"a"}"#).unwrap();
        sink.append("b", r#"{"id":"b"}"#).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"id\":\"a\"}\n{\"id\":\"b\"}\n"
        );
        let sink = JsonlSink::open(&path, None);
        assert!(sink.contains("a") && sink.contains("b") && !sink.contains("c"));
    }

    #[test]
    fn a_log_on_a_pipe_is_written_once_and_never_read_back() {
        // Opening a pipe to read waits for a writer: the scan at start-up
        // must not, or the daemon would hang before its first poll.
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("alerts.pipe");
        crate::testing::mkfifo(&fifo);
        let (done, finished) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let mut sink = JsonlSink::open(&path, None);
            let scanned = sink.scan().is_ok();
            let _ = done.send(scanned);
        });
        let scanned = finished
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("opening a log on a pipe returns at once");
        assert!(scanned);

        // With a reader at the other end, each line goes through once: a
        // pipe cannot be synced, which is no reason to call the write failed
        // and write the line again.
        // Without a reader, nothing waits for one: the line stays unwritten.
        let mut sink = JsonlSink::open(&fifo, None);
        let err = sink.append("a", r#"{"id":"a"}"#).unwrap_err();
        assert!(
            err.to_string().contains("named pipe that nobody reads"),
            "{err}"
        );
        let path = fifo.clone();
        let reader = std::thread::spawn(move || std::fs::read_to_string(path).unwrap());
        // Until the reader has the pipe open, the line is refused as above.
        let start = std::time::Instant::now();
        while sink.append("a", r#"{"id":"a"}"#).is_err() {
            assert!(start.elapsed() < std::time::Duration::from_secs(5));
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        sink.append("b", r#"{"id":"b"}"#).unwrap();
        drop(sink);
        assert_eq!(reader.join().unwrap(), "{\"id\":\"a\"}\n{\"id\":\"b\"}\n");
    }

    #[test]
    fn follows_a_renamed_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        let mut sink = JsonlSink::open(&path, None);
        sink.append("a", r#"{"id":"a"}"#).unwrap();
        std::fs::rename(&path, dir.path().join("alerts.jsonl.1")).unwrap();
        sink.append("b", r#"{"id":"b"}"#).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"id\":\"b\"}\n");
    }

    #[test]
    fn rotates_by_size_keeping_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        let rotation = Rotation {
            max_bytes: 30,
            keep: 2,
        };
        let mut sink = JsonlSink::open(&path, Some(rotation));
        for id in ["a1", "a2", "a3", "a4", "a5"] {
            sink.append(id, &format!(r#"{{"id":"{id}","pad":"xx"}}"#))
                .unwrap();
        }
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        assert_eq!(read(&path), "{\"id\":\"a5\",\"pad\":\"xx\"}\n");
        assert_eq!(
            read(&numbered(&path, 1)),
            "{\"id\":\"a4\",\"pad\":\"xx\"}\n"
        );
        assert_eq!(
            read(&numbered(&path, 2)),
            "{\"id\":\"a3\",\"pad\":\"xx\"}\n"
        );
        assert!(!numbered(&path, 3).exists());
        // Ids of the rotated file are still known after a restart.
        let sink = JsonlSink::open(&path, Some(rotation));
        assert!(sink.contains("a4") && sink.contains("a5"));
    }

    #[test]
    fn a_cut_short_line_does_not_swallow_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        std::fs::write(&path, "{\"id\":\"a\"}\n{\"id\":\"b\",\"tru").unwrap();
        let mut sink = JsonlSink::open(&path, None);
        sink.append("c", r#"{"id":"c"}"#).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("\"tru\n{\"id\":\"c\"}\n"), "{text}");
    }
}
