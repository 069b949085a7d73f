//! `harken serve` (the HTTP API and/or workers, per `--role`) and `harken worker` (workers only),
//! on SQLite in the data dir or on a shared PostgreSQL database (`--database-url`).

use std::io::Write as _;
use std::sync::Arc;

use anyhow::Context as _;
use harken_engine::{EngineError, SpeechEngine, TranscribeOptions};
use harken_server::{Role, ServerConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub server: ServerConfig,
    #[command(flatten)]
    pub engine: crate::engine::EngineArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let Args { server, engine } = args;
    server.validate()?;
    std::fs::create_dir_all(&server.data_dir)
        .with_context(|| format!("creating the data dir {}", server.data_dir.display()))?;
    let location = server.store_location()?;
    let store = harken_store::open_store(&location, !server.no_migrate)
        .await
        .with_context(|| format!("opening the database ({})", location.describe()))?;
    let engine: Arc<dyn SpeechEngine> = match server.role.runs_workers() {
        true => crate::engine::load(&engine).await.context("loading the speech engine")?,
        // An API node never transcribes: it need not hold a model in memory.
        false => Arc::new(NoEngine(engine.model)),
    };
    let serves_api = server.role.serves_http();
    let on_ready = move |addr: Option<std::net::SocketAddr>| {
        // The one line on stdout: scripts (and the integration tests) read it.
        let mut out = std::io::stdout().lock();
        let _ = match addr {
            Some(addr) if serves_api => writeln!(out, "harken: listening on http://{addr}"),
            Some(addr) => writeln!(out, "harken: worker ready; /healthz and /metrics on http://{addr}"),
            None => writeln!(out, "harken: worker ready"),
        };
        let _ = out.flush();
    };
    harken_server::run(server, store, engine, on_ready, shutdown_signal()).await?;
    // An inference already running on a blocking thread cannot be interrupted, and dropping the
    // runtime would wait for it; its task was released back to the queue, so exit now.
    exit_now()
}

/// Ends the process at once with status 0, without running C++ static destructors: an
/// inference may still be running inside CTranslate2 on another thread, and tearing its
/// globals down under it crashed the process at exit (seen once under load).
#[allow(unsafe_code)]
fn exit_now() -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` only ends the process; no Rust state is used after it.
    unsafe { libc::_exit(0) }
}

/// `harken worker`: `serve --role worker`.
pub async fn run_worker(mut args: Args) -> anyhow::Result<()> {
    args.server.role = Role::Worker;
    run(args).await
}

/// The engine of a node that runs no workers: only its name is used (`/healthz`).
struct NoEngine(String);

impl SpeechEngine for NoEngine {
    fn transcribe(
        &self,
        _: &[f32],
        _: &TranscribeOptions,
        _: harken_engine::Progress<'_>,
    ) -> Result<harken_types::Transcript, EngineError> {
        Err(EngineError::Inference("this node runs with --role api and transcribes nothing (a bug if reached)".into()))
    }
    fn model_name(&self) -> &str {
        &self.0
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("received SIGINT"),
        _ = term => tracing::info!("received SIGTERM"),
    }
}
