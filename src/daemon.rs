//! The daemon: per-feed polling tasks, a delivery task, signals and shutdown.
//!
//! Each feed gets one task that sleeps until the feed is due, takes a global
//! and a per-host permit, polls through the [`Pipeline`], and wakes the
//! delivery task. Nothing busy-waits: an idle daemon is a set of sleeping
//! timers. SIGINT/SIGTERM cancel a [`CancellationToken`]; polls already in
//! flight finish (each is bounded by the fetch timeout), pending alerts are
//! delivered, and the process exits 0. [`once`] runs the same stages once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::config::{Config, Defaults, Feed, Origin};
use crate::fetch::{FetchError, Fetcher};
use crate::metrics::Metrics;
use crate::pipeline::{Pipeline, PollCause, PollError, PollReport};
use crate::sinks::{Delivered, DesktopSink, JsonlSink, Sinks, deliver_pending};
use crate::store::Store;

/// Longest pause between polls of a failing feed (unless the interval is longer).
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Errors that stop the daemon or `once` from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] FetchError),
}

/// The state directory, held by the one process that polls and delivers.
///
/// Two daemons, or a daemon and `once`, on one state would each deliver the
/// same pending alerts, and each raise alerts on stories whose recent alerts
/// only the other has in memory. The lock is an advisory lock on
/// `newswatch.lock` in the state directory, which the operating system
/// releases when the process ends, however it ends.
pub struct StateLock {
    _file: std::fs::File,
    /// The state directory, resolved.
    dir: std::path::PathBuf,
}

impl StateLock {
    /// Takes the lock on `state_dir`, or says which process holds it.
    pub fn acquire(state_dir: &std::path::Path) -> anyhow::Result<StateLock> {
        use anyhow::Context;
        use std::io::{Read, Seek, Write};
        let path = state_dir.join("newswatch.lock");
        let cannot = || format!("cannot lock the state in {}", state_dir.display());
        std::fs::create_dir_all(state_dir).with_context(cannot)?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(cannot)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => String::new(),
                    pid => format!(" (pid {pid})"),
                };
                anyhow::bail!(
                    "another newswatch{holder} is polling with the state in {}: stop it first, \
                     or give this one its own [state] dir",
                    state_dir.display()
                );
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e).with_context(cannot),
        }
        // Who holds it, for the message above; the lock does not depend on it.
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .with_context(cannot)?;
        let dir = std::fs::canonicalize(state_dir).with_context(cannot)?;
        Ok(StateLock { _file: file, dir })
    }

    /// Whether `state_dir` is the directory this lock is on (however it is
    /// written: a second lock on it from this process would fail).
    pub fn covers(&self, state_dir: &std::path::Path) -> bool {
        std::fs::canonicalize(state_dir).is_ok_and(|dir| dir == self.dir)
    }
}

/// Opens the state, the fetcher and the sinks for `config`.
pub fn prepare(
    config: Arc<Config>,
    metrics: Arc<Metrics>,
) -> Result<(Pipeline, Sinks), StartError> {
    let store = Arc::new(Mutex::new(Store::open(
        &config.state_dir.join("state.sqlite"),
    )?));
    let log = JsonlSink::open(&config.log_path, config.raw.log.rotation());
    let sinks = Sinks {
        log,
        desktop: config.raw.notify.desktop.then(|| {
            DesktopSink::new(config.raw.notify.max_per_minute)
                .open_links_with(config.raw.notify.open_with.clone())
        }),
        stdout: config
            .raw
            .notify
            .stdout
            .then(crate::sinks::StdoutSink::start)
            .flatten(),
        min_severity: config.raw.notify.min_severity,
        webhooks: {
            // A POST cannot follow a redirect (it would turn into a GET
            // and look delivered); the webhook reports it instead.
            let client = reqwest::Client::builder()
                .user_agent(crate::fetch::USER_AGENT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| FetchError::Network(e.to_string()))?;
            let urls: Vec<&str> = config.raw.webhooks.iter().map(|h| h.url.as_str()).collect();
            for (url, alerts) in crate::sinks::lock(&store).drop_other_queues(&urls)? {
                warn!(%url, alerts, "dropped the alerts queued for a webhook no longer configured (they are in the log)");
            }
            config
                .raw
                .webhooks
                .iter()
                .map(|hook| {
                    crate::sinks::webhook::WebhookSink::start(hook, client.clone(), store.clone())
                })
                .collect()
        },
        exec: crate::sinks::exec::ExecSink::new(
            &config.raw.notify.exec,
            config.raw.notify.exec_timeout.0,
            config.raw.notify.exec_min_severity,
        ),
    };
    // The story index is rebuilt from the state when the first items arrive
    // (a cycle of 304s never needs it).
    let stories = crate::stories::StoryIndex::new(config.raw.stories.window.0.as_secs() as i64);
    let pipeline = Pipeline {
        stories: Arc::new(Mutex::new(stories)),
        fetcher: Fetcher::new(&config.raw.fetch)?,
        store,
        config,
        metrics,
    };
    Ok((pipeline, sinks))
}

/// Concurrency limits shared by all polls.
#[derive(Clone)]
struct Limits {
    global: Arc<Semaphore>,
    per_host: Arc<HashMap<String, Arc<Semaphore>>>,
}

fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default()
}

impl Limits {
    fn new(config: &Config) -> Limits {
        let mut per_host = HashMap::new();
        for feed in &config.feeds {
            per_host
                .entry(host_of(&feed.url))
                .or_insert_with(|| Arc::new(Semaphore::new(config.raw.fetch.per_host)));
        }
        Limits {
            global: Arc::new(Semaphore::new(config.raw.fetch.concurrency)),
            per_host: Arc::new(per_host),
        }
    }

    async fn poll(&self, pipeline: &Pipeline, feed: &Feed) -> Result<PollReport, PollError> {
        let host = self.per_host.get(&host_of(&feed.url)).cloned();
        // Semaphores are never closed, so acquiring cannot fail.
        let _host_permit = match &host {
            Some(h) => Some(
                h.acquire()
                    .await
                    .expect("per-host semaphores are never closed"),
            ),
            None => None,
        };
        let _permit = self
            .global
            .acquire()
            .await
            .expect("the global semaphore is never closed");
        pipeline.poll(feed).await
    }
}

fn log_poll(feed: &Feed, result: &Result<PollReport, PollError>) {
    match result {
        Ok(r) if r.not_modified => debug!(url = %feed.url, "not modified"),
        Ok(r) => info!(
            url = %feed.url,
            items = r.items,
            new = r.new_items,
            alerts = r.alerts,
            caught_up = r.caught_up,
            republished = r.republished,
            "polled"
        ),
        Err(e) => warn!(url = %feed.url, cause = %e.cause, "poll failed"),
    }
}

/// What `once` did, for the summary and the exit code.
#[derive(Debug, Default)]
pub struct OnceSummary {
    pub feeds: usize,
    pub failed: Vec<PollError>,
    pub alerts: usize,
    pub delivered: Delivered,
}

/// Polls every feed once, concurrently within the limits, then delivers.
pub async fn once(config: Arc<Config>) -> anyhow::Result<OnceSummary> {
    let _lock = StateLock::acquire(&config.state_dir)?;
    let (pipeline, mut sinks) = prepare(config.clone(), Arc::default())?;
    let limits = Limits::new(&config);
    let mut tasks = JoinSet::new();
    for feed in &config.feeds {
        let feed = feed.clone();
        let pipeline = pipeline.clone();
        let limits = limits.clone();
        tasks.spawn(async move {
            let result = limits.poll(&pipeline, &feed).await;
            log_poll(&feed, &result);
            result
        });
    }
    let mut summary = OnceSummary {
        feeds: config.feeds.len(),
        ..OnceSummary::default()
    };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(report)) => summary.alerts += report.alerts,
            Ok(Err(e)) => summary.failed.push(e),
            Err(e) => summary.failed.push(PollError {
                url: "?".into(),
                cause: PollCause::Task(e.to_string()),
            }),
        }
    }
    summary.delivered = deliver_pending(&pipeline.store, &mut sinks).await?;
    sinks.close().await;
    Ok(summary)
}

/// How `run` reacts to configuration changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// Reload when the config file changes (SIGHUP always reloads).
    pub watch_config: bool,
}

/// Runs until SIGINT or SIGTERM. SIGHUP, or a change to the config file,
/// reloads the configuration: a valid one replaces the running one (the state
/// carries over, so nothing is re-alerted); an invalid one is reported with its
/// located errors and the running configuration stays.
pub async fn run(config: Arc<Config>, options: RunOptions) -> anyhow::Result<()> {
    let mut lock = StateLock::acquire(&config.state_dir)?;
    let shutdown = CancellationToken::new();
    let reload = Arc::new(Notify::new());
    spawn_signal_handler(shutdown.clone(), reload.clone());
    let _watcher = match (&config.origin, options.watch_config) {
        (Origin::File(path), true) => watch_config_file(path, reload.clone()),
        _ => None,
    };
    let mut config = config;
    let mut first = true;
    // Counters survive reloads.
    let metrics = Arc::new(Metrics::default());
    loop {
        let generation = CancellationToken::new();
        let running = tokio::spawn(run_until(
            config.clone(),
            generation.clone(),
            metrics.clone(),
        ));
        if first {
            sd_notify("READY=1");
            first = false;
        } else {
            sd_notify("READY=1\nSTATUS=configuration reloaded");
        }
        let next = loop {
            tokio::select! {
                _ = shutdown.cancelled() => break None,
                _ = reload.notified() => {}
            }
            let Origin::File(path) = &config.origin else {
                warn!("running on the built-in configuration: nothing to reload");
                continue;
            };
            match Config::load(Some(path)) {
                Ok(new) => {
                    // Another state directory is locked before it is used.
                    let new_lock = if lock.covers(&new.state_dir) {
                        None
                    } else {
                        match StateLock::acquire(&new.state_dir) {
                            Ok(taken) => Some(taken),
                            Err(e) => {
                                error!("configuration not reloaded, the running one stays: {e:#}");
                                continue;
                            }
                        }
                    };
                    for warning in &new.warnings {
                        warn!("{warning}");
                    }
                    info!(config = %path.display(), feeds = new.feeds.len(), rules = new.rules.len(), "reloading configuration");
                    break Some((Arc::new(new), new_lock));
                }
                Err(e) => error!("configuration not reloaded, the running one stays:\n{e}"),
            }
        };
        sd_notify(if next.is_some() {
            "RELOADING=1"
        } else {
            "STOPPING=1"
        });
        generation.cancel();
        match running.await {
            Ok(result) => result?,
            Err(e) => error!(cause = %e, "daemon task failed"),
        }
        match next {
            Some((new, new_lock)) => {
                config = new;
                if let Some(taken) = new_lock {
                    lock = taken;
                }
            }
            None => {
                info!("stopped");
                return Ok(());
            }
        }
    }
}

/// Tells systemd (Type=notify) about readiness, reloads and stopping; a no-op
/// when not started by systemd.
fn sd_notify(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let socket = socket.to_string_lossy().into_owned();
    let sent = std::os::unix::net::UnixDatagram::unbound().and_then(|datagram| {
        if let Some(abstract_name) = socket.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            let addr =
                std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes())?;
            datagram.send_to_addr(state.as_bytes(), &addr)
        } else {
            datagram.send_to(state.as_bytes(), &socket)
        }
    });
    if let Err(e) = sent {
        warn!(socket = %socket, cause = %e, "cannot notify systemd");
    }
}

fn spawn_signal_handler(shutdown: CancellationToken, reload: Arc<Notify>) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            error!("cannot install signal handlers; stop newswatch with SIGKILL");
            return;
        };
        loop {
            tokio::select! {
                _ = term.recv() => { info!("SIGTERM: stopping"); break; }
                _ = int.recv() => { info!("SIGINT: stopping"); break; }
                _ = hup.recv() => { info!("SIGHUP: reloading the configuration"); reload.notify_one(); }
            }
        }
        shutdown.cancel();
    });
}

/// Watches the directory of the config file (editors replace files by
/// renaming, which a watch on the file itself would lose) and signals a reload
/// once changes to the file have settled.
fn watch_config_file(
    path: &std::path::Path,
    reload: Arc<Notify>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    // `--config newswatch.toml` has an empty parent: the current directory.
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path.file_name()?.to_os_string();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(16);
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            let ours = event
                .paths
                .iter()
                .any(|p| p.file_name() == Some(name.as_os_str()));
            if ours && !matches!(event.kind, notify::EventKind::Access(_)) {
                let _ = tx.try_send(());
            }
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            warn!(cause = %e, "cannot watch the config file; reload with SIGHUP");
            return None;
        }
    };
    if let Err(e) = watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
        warn!(dir = %dir.display(), cause = %e, "cannot watch the config directory; reload with SIGHUP");
        return None;
    }
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // An editor's save is several events; wait for them to settle.
            loop {
                match tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            info!("config file changed");
            reload.notify_one();
        }
    });
    Some(watcher)
}

/// How often the daemon looks whether polls have run since it last handed
/// freed memory back.
const MEMORY_TRIM_EVERY: Duration = Duration::from_secs(30);

/// Hands freed memory back to the system once polls have run and gone quiet:
/// a burst of polls leaves the heap full of holes that a daemon running for
/// months would otherwise keep.
async fn release_memory_after_polls(
    metrics: Arc<Metrics>,
    store: crate::pipeline::SharedStore,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(MEMORY_TRIM_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut trimmed_at = 0;
    let mut last_seen = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let fetches = metrics.fetches();
        // Polls ran, and none since the last look: the burst is over.
        if fetches != trimmed_at && fetches == last_seen {
            let store = store.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = crate::sinks::lock(&store).release_cache() {
                    debug!(cause = %e, "could not shrink the state's cache");
                }
                crate::memory::release_free_memory();
            });
            trimmed_at = fetches;
        }
        last_seen = fetches;
    }
}

/// Runs the daemon until `shutdown` is cancelled.
pub async fn run_until(
    config: Arc<Config>,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
) -> anyhow::Result<()> {
    let (pipeline, sinks) = prepare(config.clone(), metrics.clone())?;
    if let Some(addr) = config.raw.metrics.listen {
        tokio::spawn(crate::metrics::serve(
            addr,
            metrics.clone(),
            pipeline.store.clone(),
            shutdown.clone(),
        ));
    }
    info!(
        config = %config.origin,
        feeds = config.feeds.len(),
        rules = config.rules.len(),
        log = %config.log_path.display(),
        "newswatch running"
    );
    // An empty configuration is valid (`feeds add` fills it), but a daemon
    // that can never alert should say so where its log is read.
    if config.feeds.is_empty() {
        warn!(
            "no feeds configured: nothing to poll; add some with `newswatch feeds add URL` or `newswatch import FILE.opml`"
        );
    } else if config.rules.is_empty() {
        warn!("no rules configured: feeds are polled, but nothing can alert");
    }
    tokio::spawn(release_memory_after_polls(
        metrics.clone(),
        pipeline.store.clone(),
        shutdown.clone(),
    ));
    let wake_delivery = Arc::new(Notify::new());
    // Delivery stops only after the polls have drained, so their alerts go out.
    let stop_delivery = CancellationToken::new();
    let delivery = tokio::spawn(delivery_task(
        pipeline.store.clone(),
        sinks,
        wake_delivery.clone(),
        stop_delivery.clone(),
    ));

    let limits = Limits::new(&config);
    let mut feeds = JoinSet::new();
    for (index, feed) in config.feeds.iter().cloned().enumerate() {
        let pipeline = pipeline.clone();
        let limits = limits.clone();
        let wake = wake_delivery.clone();
        let shutdown = shutdown.clone();
        // Spread the first polls over a few seconds instead of all at once.
        let stagger = Duration::from_millis((index as u64 * 97) % 5000);
        feeds.spawn(feed_task(pipeline, limits, feed, stagger, wake, shutdown));
    }

    shutdown.cancelled().await;
    let deadline = config.raw.fetch.timeout.0 + Duration::from_secs(5);
    let drained = tokio::time::timeout(deadline, async {
        while feeds.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            "some polls did not finish within {}s; abandoning them",
            deadline.as_secs()
        );
        feeds.abort_all();
    }
    stop_delivery.cancel();
    match delivery.await {
        Ok(()) => {}
        Err(e) => error!(cause = %e, "delivery task failed"),
    }
    Ok(())
}

async fn feed_task(
    pipeline: Pipeline,
    limits: Limits,
    feed: Feed,
    stagger: Duration,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let state = {
        let store = pipeline.store.clone();
        let url = feed.url.clone();
        tokio::task::spawn_blocking(move || crate::sinks::lock(&store).feed_state(&url))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
    };
    let defaults = &pipeline.config.raw.defaults;
    // An adaptive feed resumes at the interval it had reached.
    let mut interval = match state.as_ref().and_then(|s| s.interval_secs) {
        Some(secs) if feed.adaptive && secs > 0 => {
            Duration::from_secs(secs as u64).clamp(defaults.min_interval.0, defaults.max_interval.0)
        }
        _ => feed.interval,
    };
    // Resume the schedule across restarts: a feed polled recently waits out its interval.
    let mut delay = match state.and_then(|s| s.last_attempt) {
        Some(last) => {
            let since = Duration::from_secs((Utc::now().timestamp() - last).max(0) as u64);
            interval.saturating_sub(since).max(stagger)
        }
        None => stagger,
    };
    let salt = feed
        .url
        .bytes()
        .fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(b));
    let mut failures: u32 = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        // A poll in flight is finished, not abandoned: it is bounded by the
        // fetch timeout, and the caller waits for it on shutdown.
        let result = limits.poll(&pipeline, &feed).await;
        log_poll(&feed, &result);
        // Successes raise rule alerts, failures may raise feed-down.
        wake.notify_one();
        delay = match &result {
            Ok(report) => {
                failures = 0;
                let next = next_interval(&feed, defaults, interval, report);
                if next != interval {
                    debug!(url = %feed.url, interval = %humantime::format_duration(next), "interval adapted");
                }
                interval = next;
                let store = pipeline.store.clone();
                let url = feed.url.clone();
                let secs = interval.as_secs() as i64;
                let _ = tokio::task::spawn_blocking(move || {
                    crate::sinks::lock(&store).set_interval(&url, secs)
                })
                .await;
                jitter(interval, salt)
            }
            Err(PollError {
                cause:
                    PollCause::Disabled(_) | PollCause::Fetch(FetchError::Status { status: 410, .. }),
                ..
            }) => return,
            Err(e) => {
                failures += 1;
                let backoff = interval
                    .saturating_mul(1 << failures.min(6))
                    .min(MAX_BACKOFF.max(interval));
                let retry_after = match &e.cause {
                    PollCause::Fetch(FetchError::Status { retry_after, .. }) => {
                        retry_after.unwrap_or_default()
                    }
                    _ => Duration::ZERO,
                };
                jitter(backoff, salt).max(retry_after)
            }
        };
    }
}

/// The interval after a successful poll: the configured one, or for adaptive
/// feeds the feed's publishing gap within [min, max], never below its `<ttl>`.
pub fn next_interval(
    feed: &Feed,
    defaults: &Defaults,
    current: Duration,
    report: &PollReport,
) -> Duration {
    if !feed.adaptive {
        return feed.interval;
    }
    let target = match report.publish_gap {
        Some(gap) => gap,
        // Nothing to go on: back off gently while the feed is quiet.
        None if report.new_items == 0 => current.mul_f64(1.5),
        None => current,
    };
    let floor = report.ttl.unwrap_or_default().max(defaults.min_interval.0);
    target.clamp(
        floor.min(defaults.max_interval.0),
        defaults.max_interval.0.max(floor),
    )
}

/// `d` moved by up to ±10% so feeds with equal intervals drift apart.
pub fn jitter(d: Duration, salt: u64) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos() as u64);
    // splitmix64: a fast, well-mixed step from a cheap seed.
    let mut x = nanos ^ salt ^ 0x9e37_79b9_7f4a_7c15;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    let unit = (x % 2001) as f64 / 1000.0 - 1.0;
    d.mul_f64(1.0 + 0.1 * unit)
}

async fn delivery_task(
    store: Arc<Mutex<Store>>,
    mut sinks: Sinks,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut retry: Option<Duration> = None;
    let mut last_error: Option<String> = None;
    loop {
        match deliver_pending(&store, &mut sinks).await {
            Ok(done) => {
                if done.written > 0 || done.already_logged > 0 {
                    debug!(
                        written = done.written,
                        already_logged = done.already_logged,
                        "delivered"
                    );
                }
                if last_error.take().is_some() {
                    info!("alert delivery works again");
                }
                retry = None;
            }
            Err(e) => {
                let message = e.to_string();
                // One error per distinct cause, not one per attempt.
                if last_error.as_deref() != Some(&message) {
                    error!(cause = %message, "alerts stay pending; will retry");
                }
                last_error = Some(message);
                let next = retry.map_or(Duration::from_secs(1), |d| {
                    (d * 2).min(Duration::from_secs(300))
                });
                retry = Some(next);
            }
        }
        sinks.flush_held(false).await;
        if shutdown.is_cancelled() {
            sinks.close().await;
            return;
        }
        // Wake for new alerts, a retry, or to show held-back notifications.
        let mut sleep = retry.unwrap_or(Duration::from_secs(3600));
        if sinks.holding() {
            sleep = sleep.min(Duration::from_secs(5));
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = shutdown.cancelled() => {
                // One last round so alerts from polls that just finished go out.
                if let Err(e) = deliver_pending(&store, &mut sinks).await {
                    error!(cause = %e, "alerts stay pending until the next start");
                }
                sinks.close().await;
                return;
            }
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}
