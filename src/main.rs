//! The `newswatch` command line: parse arguments, call the library, map errors
//! to exit codes (0 ok, 1 runtime failure, 2 bad usage or invalid config).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use newswatch::commands::{self, MatchOptions, TailOptions};
use newswatch::config::{Config, ConfigError};

#[derive(Parser)]
#[command(
    name = "newswatch",
    version,
    about = "Watch news feeds and alert on what matters"
)]
struct Cli {
    /// Configuration file (default: $NEWSWATCH_CONFIG, then
    /// $XDG_CONFIG_HOME/newswatch/newswatch.toml, then the built-in default)
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// More log output (-v debug, -vv trace); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only warnings and errors in the log output
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Log line format on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Auto,
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon in the foreground (SIGTERM/SIGINT stop it gracefully, SIGHUP reloads)
    Run {
        /// Do not reload when the config file changes (SIGHUP still reloads)
        #[arg(long)]
        no_watch: bool,
    },
    /// Poll every feed once, deliver alerts, exit
    Once,
    /// Validate the configuration, rules and entities; print a summary
    Check,
    /// Dry run: show which rules fire on a feed, a file or an article, and why
    Match {
        /// Feed URL, feed file, plain-text article file, or - for an article on stdin
        source: Option<String>,
        /// Try this query instead of the configured rules; repeat it to
        /// compare queries (reported as query-1, query-2, …)
        #[arg(long, value_name = "QUERY")]
        rule: Vec<String>,
        /// Replay items stored in the state over this window (e.g. 7d)
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        since: Option<std::time::Duration>,
        /// One JSON object per matching item
        #[arg(long)]
        json: bool,
        /// Also list items no rule matched
        #[arg(long)]
        all: bool,
    },
    /// Feed health from the state: last fetch, status, errors, next due
    Feeds {
        /// One JSON object per feed
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<FeedsAction>,
    },
    /// Recent stories and how many sources carried each
    Stories {
        /// One JSON object per story
        #[arg(long)]
        json: bool,
        /// Stories seen within this window (default 48h)
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        since: Option<std::time::Duration>,
        /// At most this many stories
        #[arg(short = 'n', long, default_value_t = 30)]
        limit: usize,
    },
    /// Add the feeds of an OPML file (another reader's export) to the config file
    Import { file: PathBuf },
    /// Write the configured feeds as OPML (to FILE, or stdout)
    Export { file: Option<PathBuf> },
    /// Print shell completions (bash, zsh, fish, elvish, powershell)
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff)
    Man,
    /// Write a commented starter config to the default config path
    Init {
        /// Overwrite an existing file
        #[arg(long)]
        force: bool,
    },
    /// Pretty-print the alert log
    Tail {
        /// Keep printing new alerts as they arrive (follows rotation)
        #[arg(short, long)]
        follow: bool,
        /// Only alerts of this rule (repeatable)
        #[arg(long)]
        rule: Vec<String>,
        /// Only alerts at or above this severity
        #[arg(long, value_parser = parse_severity)]
        severity: Option<newswatch::config::Severity>,
        /// Only alerts raised within this window (e.g. 24h)
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        since: Option<std::time::Duration>,
        /// Pass the JSON lines through unchanged (for jq)
        #[arg(long)]
        json: bool,
        /// Lines of history to show before following (default: all)
        #[arg(short = 'n', long)]
        lines: Option<usize>,
    },
}

#[derive(Subcommand)]
enum FeedsAction {
    /// Add a feed to the config file
    Add {
        url: String,
        #[arg(long)]
        name: Option<String>,
        /// A tag (repeatable)
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    /// Remove a feed from the config file
    Remove { url: String },
    /// Poll a feed again that was disabled (HTTP 410) or moved
    Enable { url: String },
}

fn parse_severity(s: &str) -> Result<newswatch::config::Severity, String> {
    newswatch::config::Severity::parse(s)
        .ok_or_else(|| "expected info, low, medium, high or critical".to_string())
}

fn init_logging(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "newswatch=debug,info",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let json = match cli.log_format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        // Under systemd (no TTY) the journal adds its own timestamps; keep lines readable anyway.
        LogFormat::Auto => false,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn load_config(cli: &Cli) -> Result<Config, ExitCode> {
    match Config::load(cli.config.as_deref()) {
        Ok(config) => {
            // `check` prints the warnings in its report instead.
            if !matches!(cli.command, Command::Check) {
                for warning in &config.warnings {
                    tracing::warn!("{warning}");
                }
            }
            Ok(config)
        }
        Err(e @ ConfigError::Invalid(_)) => {
            say(format_args!("{e}"));
            Err(ExitCode::from(2))
        }
        Err(e) => {
            say(format_args!("error: {e}"));
            Err(ExitCode::from(2))
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime can be built on any supported platform")
}

/// Threads for the daemon's blocking work (parsing and the state, which is
/// one SQLite connection behind a mutex). Tokio's default allows 512: a burst
/// of polls then starts dozens of threads that mostly wait for that mutex,
/// and each leaves memory behind after it exits (its malloc arena, its own
/// cache of every lazily built regex it used), which a long-running process
/// keeps for good. A few threads keep both cores busy.
const DAEMON_BLOCKING_THREADS: usize = 4;

/// Threads running the daemon's tasks. Tokio's default is one per core, but
/// the tasks mostly wait on the network and timers (parsing and the state
/// run on the blocking threads above), and each worker keeps its stack and
/// caches for the life of the process (8 workers instead of 2 left the idle
/// daemon 0.3 MB larger). Two keep a slow TLS handshake from holding up the
/// rest, and make the daemon's memory the same on every machine.
const DAEMON_WORKER_THREADS: usize = 2;

fn daemon_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(DAEMON_WORKER_THREADS)
        .max_blocking_threads(DAEMON_BLOCKING_THREADS)
        .enable_all()
        .build()
        .expect("a tokio runtime can be built on any supported platform")
}

/// Writes a line to stderr, ignoring failure: reporting an error must not
/// panic when stderr is closed or full.
fn say(message: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{message}");
}

/// Writes `bytes` to stdout; the exit status for it.
fn emit(bytes: &[u8]) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say(format_args!("error: cannot write to standard output: {e}"));
            ExitCode::from(1)
        }
    }
}

/// Lets a closed pipe end the process quietly, as it ends `cat` or `grep`
/// (`newswatch export | head`), instead of failing every later write. The
/// daemon keeps SIGPIPE ignored: a reader of its stdout going away must not
/// kill it.
fn die_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restores the default action for one signal, before any other
    // thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    newswatch::panics::log_panics();
    if !matches!(cli.command, Command::Run { .. } | Command::Once) {
        die_on_closed_pipe();
    }
    match &cli.command {
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "newswatch", &mut script);
            return emit(&script);
        }
        Command::Man => {
            use clap::CommandFactory;
            let mut page = Vec::new();
            return match clap_mangen::Man::new(Cli::command()).render(&mut page) {
                Ok(()) => emit(&page),
                Err(e) => {
                    say(format_args!("error: {e}"));
                    ExitCode::from(1)
                }
            };
        }
        _ => {}
    }
    if let Command::Init { force } = cli.command {
        let path = cli
            .config
            .clone()
            .unwrap_or_else(newswatch::config::default_config_path);
        return match commands::init(&path, force) {
            Ok(()) => emit(format!("wrote {}\n", path.display()).as_bytes()),
            Err(e) => {
                say(format_args!("error: {e:#}"));
                ExitCode::from(1)
            }
        };
    }
    let config = match load_config(&cli) {
        Ok(c) => Arc::new(c),
        Err(code) => return code,
    };
    let result = match cli.command {
        Command::Check => Ok(emit(commands::check_summary(&config).as_bytes())),
        Command::Init { .. } | Command::Completions { .. } | Command::Man => {
            unreachable!("handled before the config is loaded")
        }
        Command::Feeds { json, action } => match action {
            None => commands::feeds(&config, json),
            Some(FeedsAction::Enable { url }) => commands::feeds_enable(&config, &url),
            Some(FeedsAction::Add { url, name, tags }) => {
                commands::feeds_add(&config, url, name, tags)
            }
            Some(FeedsAction::Remove { url }) => commands::feeds_remove(&config, &url),
        },
        Command::Import { file } => commands::import(&config, &file),
        Command::Stories { json, since, limit } => commands::stories(&config, json, since, limit),
        Command::Export { file } => commands::export(&config, file.as_deref()),
        Command::Run { no_watch } => {
            newswatch::memory::limit_malloc_arenas();
            daemon_runtime()
                .block_on(newswatch::daemon::run(
                    config,
                    newswatch::daemon::RunOptions {
                        watch_config: !no_watch,
                    },
                ))
                .map(|()| ExitCode::SUCCESS)
        }
        Command::Once => {
            newswatch::memory::limit_malloc_arenas();
            runtime().block_on(commands::once(config))
        }
        Command::Match {
            source,
            rule,
            since,
            json,
            all,
        } => runtime().block_on(commands::match_command(
            config,
            MatchOptions {
                source,
                rule,
                since,
                json,
                all,
            },
        )),
        Command::Tail {
            follow,
            rule,
            severity,
            since,
            json,
            lines,
        } => commands::tail(
            &config,
            TailOptions {
                follow,
                rules: rule,
                severity,
                since,
                json,
                lines,
            },
        ),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            say(format_args!("error: {e:#}"));
            if e.downcast_ref::<commands::UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
