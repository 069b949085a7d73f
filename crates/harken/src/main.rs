//! `harken`: one executable, a subcommand per role.
//!
//! Exit codes: 0 success, 1 the command failed (the error is printed on one line with its
//! context), 2 the command line was wrong (clap's own code).

mod cmd;
mod engine;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "harken", version, about = "Self-hosted speech-to-text job server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter in `tracing` syntax (e.g. `info`, `harken=debug`).
    #[arg(long, global = true, env = "HARKEN_LOG", default_value = "info")]
    log: String,
    /// Log format.
    #[arg(long, global = true, env = "HARKEN_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API and/or workers (`--role all|api|worker`).
    Serve(cmd::serve::Args),
    /// Run workers and the callback dispatcher only, no HTTP (`serve --role worker`).
    Worker(cmd::serve::Args),
    /// Apply the database migrations and exit.
    Migrate(cmd::migrate::Args),
    /// Transcribe files or URLs without a server and print the transcript.
    Transcribe(cmd::transcribe::Args),
    /// Fetch and list speech models.
    Models(cmd::models::Args),
    /// Create and list API keys.
    Keys(cmd::keys::Args),
}

fn init_tracing(cli: &Cli) {
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Caps glibc's malloc arenas at one per core (at least two), unless `MALLOC_ARENA_MAX` sets
/// its own. glibc gives threads up to eight arenas per core and keeps what a thread freed in its
/// arena; diarization starts short-lived threads beside decoding, so each can leave its peak
/// behind in an arena of its own. On a 65-minute recording, on 2 cores, the cap took the peak
/// of `--diarize` from a median of 1 185 to 1 097 MB (docs/DIARIZATION.md, "Malloc arenas").
/// Must run before the first thread starts: arenas are handed out as threads first allocate.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn cap_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
    // SAFETY: `mallopt` only sets an allocator parameter; no other thread runs yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, i32::try_from(cores).unwrap_or(i32::MAX));
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn cap_malloc_arenas() {}

fn main() {
    cap_malloc_arenas();
    let cli = Cli::parse();
    init_tracing(&cli);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => cmd::serve::run(args).await,
            Command::Worker(args) => cmd::serve::run_worker(args).await,
            Command::Migrate(args) => cmd::migrate::run(args).await,
            Command::Transcribe(args) => cmd::transcribe::run(args).await,
            Command::Models(args) => cmd::models::run(args).await,
            Command::Keys(args) => cmd::keys::run(args).await,
        }
    });
    if let Err(err) = result {
        eprintln!("harken: {err:#}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
