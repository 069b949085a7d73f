//! The server's lifecycle: bind, start workers, reaper and dispatcher, serve, and on shutdown
//! drain (createTask answers 455), stop claiming, release unfinished leases, stop serving.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use harken_audio::{FetchPolicy, Fetcher};
use harken_engine::SpeechEngine;
use harken_store::Store;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::callbacks::Dispatcher;
use crate::worker::Worker;
use crate::{router, AppState, ServerConfig};

/// Serves until `shutdown` completes, then shuts down gracefully. `on_ready` receives the bound
/// address (useful with port 0) once the socket listens.
pub async fn run(
    config: ServerConfig,
    store: Arc<dyn Store>,
    engine: Arc<dyn SpeechEngine>,
    on_ready: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    let work_dir = config.data_dir.join("tmp");
    // Downloads left by a crashed run are garbage: their tasks start over.
    let _ = std::fs::remove_dir_all(&work_dir);
    std::fs::create_dir_all(&work_dir).with_context(|| format!("creating {}", work_dir.display()))?;
    let fetcher = Fetcher::new(FetchPolicy {
        max_bytes: config.max_audio_mb * 1024 * 1024,
        total_timeout: Duration::from_secs(config.download_timeout_secs),
        allow_private: config.allow_private_urls,
        ..FetchPolicy::default()
    })
    .context("building the download client")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let shutdown_timeout = Duration::from_secs(config.shutdown_timeout_secs);
    let state = AppState::new(store, config, engine.model_name());
    tracing::info!(config = ?state.config, model = engine.model_name(), "starting");

    let cancel = CancellationToken::new();
    let mut background = JoinSet::new();
    for i in 0..state.config.workers {
        background.spawn(
            Worker {
                id: format!("{}-w{i}", harken_store::new_id("node")),
                state: state.clone(),
                engine: engine.clone(),
                fetcher: fetcher.clone(),
                work_dir: work_dir.clone(),
                cancel: cancel.clone(),
            }
            .run(),
        );
    }
    background.spawn(reap_expired_leases(state.clone(), cancel.clone()));
    background.spawn(Dispatcher::new(state.clone(), cancel.clone())?.run());

    let stop_http = CancellationToken::new();
    let http = axum::serve(listener, router(state.clone())).with_graceful_shutdown(stop_http.clone().cancelled_owned());
    let mut http = tokio::spawn(async move { http.await });
    tracing::info!(listen = %addr, "listening");
    on_ready(addr);

    tokio::select! {
        _ = shutdown => {}
        r = &mut http => {
            cancel.cancel();
            return r.context("the HTTP server task failed")?.context("the HTTP server failed");
        }
    }
    tracing::info!("shutting down: refusing new tasks, releasing unfinished ones");
    state.start_draining();
    cancel.cancel();
    if tokio::time::timeout(shutdown_timeout, async { while background.join_next().await.is_some() {} }).await.is_err()
    {
        tracing::warn!("workers did not stop in time; their leases will expire instead");
    }
    stop_http.cancel();
    match tokio::time::timeout(shutdown_timeout, http).await {
        Ok(r) => r.context("the HTTP server task failed")?.context("the HTTP server failed")?,
        Err(_) => tracing::warn!("open connections did not close in time"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// Returns tasks of dead workers to the queue (or fails them after too many attempts).
async fn reap_expired_leases(state: AppState, cancel: CancellationToken) {
    let every = (state.config.lease() / 2).max(Duration::from_secs(1));
    while !cancel.is_cancelled() {
        match state.store.reclaim_expired(state.config.max_attempts).await {
            Ok(r) if r.requeued > 0 || r.failed > 0 => {
                tracing::warn!(
                    tasks.requeued = r.requeued,
                    tasks.failed = r.failed,
                    "reclaimed tasks whose worker stopped"
                );
                state.task_added.notify_waiters();
                if r.failed > 0 {
                    state.callback_added.notify_one();
                }
            }
            Ok(_) => {}
            Err(err) => tracing::error!(error = %err, "could not reclaim expired leases"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = cancel.cancelled() => {}
        }
    }
}
