//! `AppState`: what handlers, workers and the dispatcher share.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use harken_store::blobs::Blobs;
use harken_store::Store;
use tokio::sync::Notify;

use crate::rate_limit::RateLimiter;
use crate::ServerConfig;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<ServerConfig>,
    pub(crate) limiter: Arc<RateLimiter>,
    pub(crate) draining: Arc<AtomicBool>,
    /// Woken when a task is created or requeued, so idle workers need not wait for their poll.
    pub(crate) task_added: Arc<Notify>,
    /// Woken when a task ends with a callback to deliver.
    pub(crate) callback_added: Arc<Notify>,
    pub(crate) model_name: Arc<str>,
    /// Whether this node's workers can label speakers; `None` on a node without workers.
    pub(crate) diarization: Option<bool>,
    /// Free places for synchronous dialect requests (`--max-sync-requests`).
    pub(crate) sync_slots: Arc<tokio::sync::Semaphore>,
    /// Uploaded files (Kie.ai file API) and the object store holding every stored byte.
    pub(crate) files: Arc<crate::files::Files>,
    /// This node's counters, served at `/metrics`.
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("model_name", &self.model_name).finish_non_exhaustive()
    }
}

impl AppState {
    /// `blobs` is the object store every node shares (`ServerConfig::blobs`).
    pub fn new(store: Arc<dyn Store>, config: ServerConfig, model_name: &str, blobs: Blobs) -> Self {
        let limiter = RateLimiter::new(config.rate_limit, config.rate_window());
        let sync_slots = Arc::new(tokio::sync::Semaphore::new(config.max_sync_requests));
        let files = Arc::new(crate::files::Files::new(&config, blobs));
        AppState {
            store,
            config: Arc::new(config),
            limiter: Arc::new(limiter),
            draining: Arc::new(AtomicBool::new(false)),
            task_added: Arc::new(Notify::new()),
            callback_added: Arc::new(Notify::new()),
            model_name: model_name.into(),
            diarization: None,
            sync_slots,
            files,
            metrics: Arc::default(),
        }
    }

    /// From now on createTask answers 455.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}
