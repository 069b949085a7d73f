//! `harken serve`: the HTTP API and in-process workers on an embedded SQLite database.

use std::io::Write as _;
use std::sync::Arc;

use anyhow::Context as _;
use harken_server::ServerConfig;
use harken_store::SqliteStore;

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
    let store = SqliteStore::open_dir(&server.data_dir)
        .await
        .with_context(|| format!("opening the database in {}", server.data_dir.display()))?;
    let engine = crate::engine::load(&engine).await.context("loading the speech engine")?;
    let on_ready = |addr| {
        // The one line on stdout: scripts (and the integration tests) read the URL from it.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "harken: listening on http://{addr}");
        let _ = out.flush();
    };
    harken_server::run(server, Arc::new(store), engine, on_ready, shutdown_signal()).await?;
    // An inference already running on a blocking thread cannot be interrupted, and dropping the
    // runtime would wait for it; its task was released back to the queue, so exit now.
    std::process::exit(0)
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
