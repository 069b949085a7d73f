//! The server's lifecycle: start what this node's role runs (HTTP API, workers, reaper, callback
//! dispatcher), and on shutdown drain (createTask answers 455), stop claiming, release unfinished
//! leases, stop serving.
//!
//! Roles (`--role`): `all` runs everything in one process; `api` only answers HTTP; `worker` runs
//! workers, the lease reaper and the callback dispatcher with no API (only `/healthz` and
//! `/metrics` with `--ops-listen`). Any number of each may share one PostgreSQL database: nodes
//! know nothing of each other, only of the database.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use harken_audio::{FetchPolicy, Fetcher};
use harken_engine::SpeechEngine;
use harken_store::{Store, Wake};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::callbacks::Dispatcher;
use crate::worker::Worker;
use crate::{router, AppState, ServerConfig};

/// Scratch directories of other processes untouched for this long are leftovers of a crash.
const STALE_SCRATCH: Duration = Duration::from_secs(24 * 3600);

/// Runs this node's role until `shutdown` completes, then shuts down gracefully. `on_ready`
/// receives the bound HTTP address (useful with port 0) once the socket listens (the API's, or a
/// worker's `--ops-listen`), or `None` when the node serves no HTTP, once the workers run.
pub async fn run(
    config: ServerConfig,
    store: Arc<dyn Store>,
    engine: Arc<dyn SpeechEngine>,
    on_ready: impl FnOnce(Option<SocketAddr>),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    let role = config.role;
    let node = harken_store::new_id("node");
    let http_at = if role.serves_http() { Some(config.listen) } else { config.ops_listen };
    let listener = match http_at {
        Some(at) => Some(tokio::net::TcpListener::bind(at).await.with_context(|| format!("listening on {at}"))?),
        None => None,
    };
    let shutdown_timeout = Duration::from_secs(config.shutdown_timeout_secs);
    let blobs = config.blobs().context("opening the object store")?;
    let files_at = blobs.describe().to_owned();
    let mut state = AppState::new(store, config, engine.model_name(), blobs);
    state.diarization = role.runs_workers().then(|| engine.supports_diarization());
    tracing::info!(config = ?state.config, model = engine.model_name(), node = %node, role = ?role, files = %files_at, "starting");

    let cancel = CancellationToken::new();
    let mut background = JoinSet::new();
    let mut watcher = None;
    let mut work_dir = None;
    if role.runs_workers() {
        // Listen before the first claim: a task created between a worker's empty claim and its
        // wait is announced to a listener that already exists.
        watcher = watch(&state).await?;
        let dir = scratch_dir(&state.config.data_dir, &node)?;
        let fetcher = Fetcher::new(FetchPolicy {
            max_bytes: state.config.max_audio_mb * 1024 * 1024,
            total_timeout: Duration::from_secs(state.config.download_timeout_secs),
            allow_private: state.config.allow_private_urls,
            ..FetchPolicy::default()
        })
        .context("building the download client")?;
        for i in 0..state.config.workers {
            background.spawn(
                Worker {
                    id: format!("{node}-w{i}"),
                    state: state.clone(),
                    engine: engine.clone(),
                    fetcher: fetcher.clone(),
                    work_dir: dir.clone(),
                    cancel: cancel.clone(),
                }
                .run(),
            );
        }
        background.spawn(reap_expired_leases(state.clone(), cancel.clone()));
        background.spawn(Dispatcher::new(state.clone(), cancel.clone())?.run());
        work_dir = Some(dir);
    }
    // Every role sweeps: deleting an expired upload (or a finished task's audio) twice is harmless.
    background.spawn(crate::files::sweep_expired(state.clone(), cancel.clone()));

    let stop_http = CancellationToken::new();
    let mut http = match listener {
        Some(listener) => {
            let addr = listener.local_addr()?;
            let app = if role.serves_http() { router(state.clone()) } else { crate::ops_router(state.clone()) };
            let http = axum::serve(listener, app).with_graceful_shutdown(stop_http.clone().cancelled_owned());
            tracing::info!(listen = %addr, api = role.serves_http(), "listening");
            on_ready(Some(addr));
            Some(tokio::spawn(async move { http.await }))
        }
        None => {
            tracing::info!(workers = state.config.workers, "worker node ready (no HTTP)");
            on_ready(None);
            None
        }
    };

    match &mut http {
        Some(server) => tokio::select! {
            _ = shutdown => {}
            r = server => {
                cancel.cancel();
                return r.context("the HTTP server task failed")?.context("the HTTP server failed");
            }
        },
        None => shutdown.await,
    }
    tracing::info!("shutting down: refusing new tasks, releasing unfinished ones");
    state.start_draining();
    cancel.cancel();
    if tokio::time::timeout(shutdown_timeout, async { while background.join_next().await.is_some() {} }).await.is_err()
    {
        tracing::warn!("workers did not stop in time; their leases will expire instead");
    }
    if let Some(w) = watcher {
        w.abort();
    }
    if let Some(dir) = work_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    stop_http.cancel();
    if let Some(http) = http {
        match tokio::time::timeout(shutdown_timeout, http).await {
            Ok(r) => r.context("the HTTP server task failed")?.context("the HTTP server failed")?,
            Err(_) => tracing::warn!("open connections did not close in time"),
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Forwards the store's cross-process wake-ups (PostgreSQL LISTEN) to the in-process ones.
async fn watch(state: &AppState) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let (tasks, callbacks) = (state.task_added.clone(), state.callback_added.clone());
    let on_wake = Arc::new(move |wake: Wake| match wake {
        Wake::Task => tasks.notify_waiters(),
        Wake::Callback => callbacks.notify_one(),
    });
    state.store.watch(on_wake).await.context("listening for new tasks (LISTEN)")
}

/// This process's own download directory, `<data dir>/tmp/<node id>`. Several processes may share
/// a data dir (an API node beside a worker node), so only directories nobody has touched for a
/// day are removed as crash leftovers.
fn scratch_dir(data_dir: &Path, node: &str) -> anyhow::Result<PathBuf> {
    let root = data_dir.join("tmp");
    if let Ok(entries) = std::fs::read_dir(&root) {
        for entry in entries.flatten() {
            let stale = entry.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
            if stale.is_some_and(|age| age > STALE_SCRATCH) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = root.join(node);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
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
