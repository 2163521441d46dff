//! Fetching feed documents: HTTP(S) with conditional GET, or local files.
//!
//! Everything external is bounded here: connect and total timeouts, a redirect
//! limit, and a body size cap enforced while streaming (a `Content-Length`
//! can lie or be missing). The fetcher hands back raw bytes and the
//! validators (ETag, Last-Modified) for the next request; it never parses and
//! never touches the state.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};

use crate::config::FetchConfig;

/// The User-Agent sent with every request.
pub const USER_AGENT: &str = concat!(
    "newswatch/",
    env!("CARGO_PKG_VERSION"),
    " (feed monitor; +https://github.com/newswatch/newswatch)"
);

/// Cache validators from a previous response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// What a fetch produced.
#[derive(Debug)]
pub enum FetchOutcome {
    /// 304: the document has not changed since the validators were issued.
    NotModified {
        /// Set when the feed moved for good (301/308 all the way).
        moved_to: Option<String>,
    },
    Fetched {
        body: Vec<u8>,
        status: u16,
        validators: Validators,
        /// The URL after redirects.
        final_url: String,
        /// Set when the feed moved for good (301/308 all the way).
        moved_to: Option<String>,
        /// The `charset` of the response's `Content-Type`, if it names one.
        charset: Option<String>,
    },
}

/// Why a fetch failed. Every variant names its cause plainly.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("HTTP {status}{}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("response larger than the {limit}-byte limit")]
    TooLarge { limit: u64 },
    #[error("timed out after {}s", .0.as_secs())]
    Timeout(Duration),
    #[error("{0}")]
    Network(String),
    #[error("cannot read {path}: {cause}")]
    File { path: String, cause: String },
}

impl FetchError {
    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A reusable HTTP client with newswatch's limits.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    max_bytes: u64,
    max_redirects: usize,
    timeout: Duration,
    /// Files that are not regular files (pipes, devices) are read too.
    any_file: bool,
}

/// The innermost useful message of an error chain ("connection refused").
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

impl Fetcher {
    pub fn new(config: &FetchConfig) -> Result<Fetcher, FetchError> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(config.connect_timeout.0)
            .timeout(config.timeout.0)
            // Redirects are followed by hand, to tell permanent moves from temporary ones.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| FetchError::Network(error_chain(&e)))?;
        Ok(Fetcher {
            client,
            max_bytes: config.max_bytes,
            max_redirects: config.max_redirects,
            timeout: config.timeout.0,
            any_file: false,
        })
    }

    /// For a command a person runs on a path they give: read a pipe or a
    /// device as well, to its end or to the size cap, as in
    /// `newswatch match <(curl -s …)`. Polled feeds are regular files only.
    pub fn reading_any_file(mut self) -> Fetcher {
        self.any_file = true;
        self
    }

    /// Fetches `url` (http, https or file). Validators turn an HTTP request
    /// into a conditional GET.
    pub async fn fetch(
        &self,
        url: &str,
        validators: &Validators,
    ) -> Result<FetchOutcome, FetchError> {
        if let Some(path) = url.strip_prefix("file://") {
            return self.read_file(path).await;
        }
        // The client's own timeout covers the body too; this is a backstop.
        match tokio::time::timeout(
            self.timeout + Duration::from_secs(1),
            self.fetch_http(url, validators),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(self.timeout)),
        }
    }

    async fn fetch_http(
        &self,
        url: &str,
        validators: &Validators,
    ) -> Result<FetchOutcome, FetchError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/rss+xml, application/atom+xml, application/feed+json, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8",
            ),
        );
        if let Some(etag) = validators
            .etag
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            headers.insert(header::IF_NONE_MATCH, etag);
        }
        if let Some(lm) = validators
            .last_modified
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            headers.insert(header::IF_MODIFIED_SINCE, lm);
        }
        let mut current = reqwest::Url::parse(url)
            .map_err(|e| FetchError::Network(format!("invalid URL: {e}")))?;
        let mut permanent = true;
        let mut hops = 0;
        let response = loop {
            let response = self
                .client
                .get(current.clone())
                .headers(headers.clone())
                .send()
                .await
                .map_err(|e| self.classify(e))?;
            let status = response.status();
            if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
                break response;
            }
            let Some(location) = response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
            else {
                return Err(FetchError::Network(format!(
                    "HTTP {} without a Location header",
                    status.as_u16()
                )));
            };
            if hops >= self.max_redirects {
                return Err(FetchError::Network(format!(
                    "too many redirects (more than {}; last to {location})",
                    self.max_redirects
                )));
            }
            current = current.join(location).map_err(|e| {
                FetchError::Network(format!("bad redirect Location {location:?}: {e}"))
            })?;
            if !matches!(current.scheme(), "http" | "https") {
                return Err(FetchError::Network(format!(
                    "redirect to a non-HTTP URL: {current}"
                )));
            }
            permanent &= matches!(
                status,
                StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT
            );
            hops += 1;
        };
        let moved_to = (hops > 0 && permanent).then(|| current.to_string());
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(FetchOutcome::NotModified { moved_to });
        }
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            return Err(FetchError::Status {
                status: status.as_u16(),
                retry_after,
            });
        }
        if response
            .content_length()
            .is_some_and(|len| len > self.max_bytes)
        {
            return Err(FetchError::TooLarge {
                limit: self.max_bytes,
            });
        }
        let header_value = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let new_validators = Validators {
            etag: header_value(header::ETAG),
            last_modified: header_value(header::LAST_MODIFIED),
        };
        let charset = header_value(header::CONTENT_TYPE)
            .as_deref()
            .and_then(content_type_charset);
        let final_url = response.url().to_string();
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.classify(e))?;
            if body.len() as u64 + chunk.len() as u64 > self.max_bytes {
                return Err(FetchError::TooLarge {
                    limit: self.max_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchOutcome::Fetched {
            body,
            status: status.as_u16(),
            validators: new_validators,
            final_url,
            moved_to,
            charset,
        })
    }

    fn classify(&self, error: reqwest::Error) -> FetchError {
        // Every report of a fetch error names the feed already; reqwest's
        // message would repeat its URL ("error sending request for url (…)").
        let error = error.without_url();
        if error.is_timeout() {
            FetchError::Timeout(self.timeout)
        } else if error.is_redirect() {
            FetchError::Network(format!("too many redirects: {}", error_chain(&error)))
        } else {
            FetchError::Network(error_chain(&error))
        }
    }

    async fn read_file(&self, path: &str) -> Result<FetchOutcome, FetchError> {
        use tokio::io::AsyncReadExt;
        let fail = |e: std::io::Error| FetchError::File {
            path: path.to_string(),
            cause: e.to_string(),
        };
        // Only a regular file has an end to read to: a pipe would be waited
        // on for ever (opening it waits for a writer) and a device such as
        // /dev/zero never ends.
        let meta = tokio::fs::metadata(path).await.map_err(fail)?;
        if !meta.is_file() && (meta.is_dir() || !self.any_file) {
            return Err(FetchError::File {
                path: path.to_string(),
                cause: if meta.is_dir() {
                    "it is a directory".into()
                } else {
                    "not a regular file (a pipe, a device or a socket)".into()
                },
            });
        }
        let file = tokio::fs::File::open(path).await.map_err(fail)?;
        let mut body = Vec::new();
        // Read one byte past the cap to tell "exactly at the limit" from "over it".
        file.take(self.max_bytes + 1)
            .read_to_end(&mut body)
            .await
            .map_err(fail)?;
        if body.len() as u64 > self.max_bytes {
            return Err(FetchError::TooLarge {
                limit: self.max_bytes,
            });
        }
        Ok(FetchOutcome::Fetched {
            body,
            status: 200,
            validators: Validators::default(),
            final_url: format!("file://{path}"),
            moved_to: None,
            charset: None,
        })
    }
}

/// The `charset` parameter of a `Content-Type` value
/// (`application/rss+xml; charset="windows-1252"` → `windows-1252`).
pub fn content_type_charset(value: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').to_string())
            .filter(|v| !v.is_empty())
    })
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let secs = (when.timestamp() - chrono::Utc::now().timestamp()).max(0);
    Some(Duration::from_secs(secs as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_charset_reads_the_parameter() {
        assert_eq!(
            content_type_charset("application/rss+xml; charset=ISO-8859-1").as_deref(),
            Some("ISO-8859-1")
        );
        assert_eq!(
            content_type_charset("text/xml;Charset=\"windows-1252\" ; q=1").as_deref(),
            Some("windows-1252")
        );
        assert_eq!(content_type_charset("text/xml; format=flowed"), None);
        assert_eq!(content_type_charset("text/xml; charset="), None);
        assert_eq!(content_type_charset("text/xml"), None);
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[tokio::test]
    async fn a_refused_connection_is_said_once_without_the_url() {
        // A port nothing listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/feed.xml");
        let fetcher = Fetcher::new(&FetchConfig::default()).unwrap();
        let err = fetcher
            .fetch(&url, &Validators::default())
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, FetchError::Network(_)), "{text}");
        assert!(text.to_lowercase().contains("refused"), "{text}");
        assert!(!text.contains("/feed.xml"), "the URL is repeated: {text}");
    }

    #[tokio::test]
    async fn a_feed_file_must_be_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("feed.pipe");
        crate::testing::mkfifo(&fifo);
        let fetcher = Fetcher::new(&FetchConfig::default()).unwrap();
        for (path, cause) in [
            (fifo.display().to_string(), "not a regular file"),
            ("/dev/zero".to_string(), "not a regular file"),
            (dir.path().display().to_string(), "it is a directory"),
        ] {
            let url = format!("file://{path}");
            // Before, the pipe was waited on for ever and /dev/zero read
            // up to the size cap.
            let fetched = tokio::time::timeout(
                Duration::from_secs(5),
                fetcher.fetch(&url, &Validators::default()),
            )
            .await
            .unwrap_or_else(|_| {
                // Let a reader stuck in the pipe go (it sees the end), so that
                // the runtime can shut down and the test fail instead of hang.
                use std::os::unix::fs::OpenOptionsExt;
                let _ = std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&fifo);
                panic!("{path}: still reading after 5 s")
            });
            let err = fetched.unwrap_err().to_string();
            assert!(err.contains(&path) && err.contains(cause), "{err}");
        }
    }

    #[tokio::test]
    async fn file_size_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.xml");
        std::fs::write(&path, vec![b'x'; 2048]).unwrap();
        let fetcher = Fetcher::new(&FetchConfig {
            max_bytes: 1024,
            ..FetchConfig::default()
        })
        .unwrap();
        let url = format!("file://{}", path.display());
        let err = fetcher
            .fetch(&url, &Validators::default())
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::TooLarge { limit: 1024 }), "{err}");
        let err = fetcher
            .fetch("file:///nonexistent/x.xml", &Validators::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x.xml"), "{err}");
    }
}
