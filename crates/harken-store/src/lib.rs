#![doc = include_str!("../README.md")]
//!
//! # Why an object-safe trait
//! The server holds an `Arc<dyn Store>` and the backend is chosen at run time from configuration
//! (a data dir today, a PostgreSQL URL later). Generics would push a type parameter through every
//! router, worker and test helper for no gain: a virtual call is nothing next to a database round
//! trip. `#[async_trait]` boxes the futures, which keeps the trait usable as `dyn`.
//!
//! # Errors
//! [`StoreError`] is this layer's error. Expected outcomes a caller must handle (no credits, a
//! lease taken over by someone else) are their own variants; database failures are `Database` and
//! end up as a plain 500 in the HTTP layer.

pub mod blobs;
mod clock;
mod error;
mod files;
mod ids;
mod open;
pub mod postgres;
mod rows;
pub mod sqlite;
mod types;

use std::time::Duration;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::StoreError;
pub use files::{FileRecord, NewFile};
pub use ids::{new_id, sha256_hex};
pub use open::{open_store, StoreLocation};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use types::{
    ApiKey, AttemptOutcome, Backlog, CallbackDelivery, CreatedKey, Credits, DeliveryStatus, NewKey, NewTask, Reclaimed,
    RetrySchedule, TaskRecord,
};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What a cross-process wake-up announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A task became `waiting` (created or requeued).
    Task,
    /// A callback delivery was queued.
    Callback,
}

/// Called for every wake-up [`Store::watch`] receives; must return quickly.
pub type WakeFn = std::sync::Arc<dyn Fn(Wake) + Send + Sync>;

/// harken's durable state. See the crate docs for the invariants every implementation keeps.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- API keys and credits ----

    /// Creates a key; the returned secret is shown once and only its SHA-256 is stored.
    async fn create_key(&self, new: NewKey) -> Result<CreatedKey>;
    /// The key whose secret is `secret`, if any.
    async fn authenticate(&self, secret: &str) -> Result<Option<ApiKey>>;
    async fn key(&self, key_id: &str) -> Result<Option<ApiKey>>;
    /// All keys, oldest first.
    async fn list_keys(&self) -> Result<Vec<ApiKey>>;
    /// Credits the key can still spend (balance minus reservations); 0 for an unknown key.
    async fn available_credits(&self, key_id: &str) -> Result<Credits>;

    // ---- tasks ----

    /// Inserts a waiting task if the key has credits left, atomically with that check
    /// (`InsufficientCredits` otherwise). `new.id` comes from [`new_id`]`("task")`.
    async fn create_task(&self, new: NewTask) -> Result<TaskRecord>;
    /// A task whoever owns it (for workers and the callback dispatcher).
    async fn task(&self, task_id: &str) -> Result<Option<TaskRecord>>;
    /// A task only if `key_id` owns it: another key's task is indistinguishable from none.
    async fn task_for_key(&self, key_id: &str, task_id: &str) -> Result<Option<TaskRecord>>;

    /// Leases the oldest waiting task to `owner` (state `queuing`, one more attempt).
    async fn claim_next(&self, owner: &str, lease: Duration) -> Result<Option<TaskRecord>>;
    /// Extends the lease; `LeaseLost` if the task is no longer `owner`'s.
    async fn heartbeat(&self, task_id: &str, owner: &str, lease: Duration) -> Result<()>;
    /// Moves a leased task to `queuing` or `generating` with a progress 0–100.
    async fn set_progress(
        &self,
        task_id: &str,
        owner: &str,
        state: harken_types::TaskState,
        progress: u8,
    ) -> Result<()>;
    /// Reserves `cost` of the key's credits for this task (replacing an earlier reservation);
    /// `InsufficientCredits` when the key cannot pay it.
    async fn reserve_credits(&self, task_id: &str, owner: &str, cost: Credits) -> Result<()>;
    /// Marks the task `success`, charges what was reserved for it, queues its callback; one
    /// transaction. A second call finds the task final and returns `LeaseLost`: charged once.
    async fn finish_success(&self, task_id: &str, owner: &str, result_json: &str) -> Result<TaskRecord>;
    /// Marks the task `fail`, charges nothing, releases its reservation, queues its callback.
    async fn finish_fail(&self, task_id: &str, owner: &str, fail_code: &str, fail_msg: &str) -> Result<TaskRecord>;
    /// Gives the task back to the queue untouched (graceful shutdown): not counted as an attempt.
    async fn release(&self, task_id: &str, owner: &str) -> Result<()>;
    /// Returns tasks whose lease expired to `waiting`, or fails those already claimed
    /// `max_attempts` times.
    async fn reclaim_expired(&self, max_attempts: u32) -> Result<Reclaimed>;

    /// Tasks by unfinished state and pending callbacks: the queue every node shares. Cheap (the
    /// partial indexes cover each count), so it can answer every metrics scrape.
    async fn backlog(&self) -> Result<Backlog>;

    // ---- callback outbox ----

    /// Leases up to `limit` due deliveries for `lease` (a crash mid-delivery retries it later).
    async fn claim_callbacks(&self, limit: u32, lease: Duration) -> Result<Vec<CallbackDelivery>>;
    /// Records one delivery attempt and schedules the next per `schedule`, or gives up.
    async fn record_callback_attempt(
        &self,
        delivery_id: i64,
        outcome: &AttemptOutcome,
        schedule: &RetrySchedule,
    ) -> Result<CallbackDelivery>;
    /// The delivery for a task, if it has a callback.
    async fn callback_for_task(&self, task_id: &str) -> Result<Option<CallbackDelivery>>;

    // ---- uploaded files ----

    /// Records an uploaded file whose bytes are already stored; it expires `new.ttl` from now.
    async fn create_file(&self, new: NewFile) -> Result<FileRecord>;
    /// A file that has not expired, whoever owns it: its id is the download capability, and
    /// download links are public like Kie's.
    async fn file(&self, file_id: &str) -> Result<Option<FileRecord>>;
    /// Up to `limit` expired files, earliest expiry first. The sweeper deletes their bytes, then
    /// calls [`Store::delete_file`], so a crash in between only repeats the work.
    async fn expired_files(&self, limit: u32) -> Result<Vec<FileRecord>>;
    /// Deletes a file's row; `false` if there was none.
    async fn delete_file(&self, file_id: &str) -> Result<bool>;

    // ---- wake-ups ----

    /// Starts calling `on_wake` whenever any process adds work to this database, and returns the
    /// task doing it once it listens (so a query made afterwards misses no wake-up), or `None`
    /// when the backend has no cross-process signal (SQLite: one process; callers poll).
    async fn watch(&self, on_wake: WakeFn) -> Result<Option<tokio::task::JoinHandle<()>>> {
        let _ = on_wake;
        Ok(None)
    }
}
