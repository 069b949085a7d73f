//! The PostgreSQL implementation, for scale-out: any number of harken nodes share one database.
//!
//! What must stay true with many nodes:
//! - a waiting task goes to one worker: claims lock the row with `FOR UPDATE SKIP LOCKED`, so
//!   concurrent claimers pass over each other's rows instead of queueing behind them;
//! - a lease that is not renewed expires and any node's reaper may return the task (reapers skip
//!   rows another reaper holds);
//! - the final transition and its charge are one transaction that locks the task row first: of
//!   two nodes racing to finish a task, the second finds it final and charges nothing;
//! - a due callback is taken by one dispatcher at a time (SKIP LOCKED plus a lease).
//!
//! Wake-ups: triggers (see `migrations/postgres/`) `NOTIFY harken_tasks` / `harken_callbacks` in
//! the transaction that makes work available; [`Store::watch`] LISTENs on one dedicated
//! connection and calls back. Callers still poll, because a notification sent while the
//! listening connection was being re-established is lost.
//!
//! Times are written from the injected [`Clock`], as in SQLite, never from `now()`: nodes'
//! clocks must agree to within a small part of a lease (NTP), as with any lease-based queue.

mod files;
mod keys;
mod outbox;
mod tasks;

use std::sync::Arc;
use std::time::Duration;

use harken_types::TaskState;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::PgPool;

use crate::{
    AttemptOutcome, CallbackDelivery, Clock, CreatedKey, Credits, FileRecord, NewFile, NewKey, NewTask, Reclaimed,
    Result, RetrySchedule, Store, SystemClock, TaskRecord, Wake, WakeFn,
};

/// The channel a new or requeued task is announced on.
pub const TASKS_CHANNEL: &str = "harken_tasks";
/// The channel a new callback delivery is announced on.
pub const CALLBACKS_CHANNEL: &str = "harken_callbacks";

/// [`Store`] on a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    clock: Arc<dyn Clock>,
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparsable database URL>".to_owned(),
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://...`) with the system clock. Does not migrate: call
    /// [`PostgresStore::migrate`] (or `harken migrate`) first.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, Arc::new(SystemClock), 16).await
    }

    /// Connects with the given clock and at most `max_connections` pooled connections (plus one
    /// for LISTEN once [`Store::watch`] is called).
    pub async fn connect_with(url: &str, clock: Arc<dyn Clock>, max_connections: u32) -> Result<Self> {
        let options: PgConnectOptions = url.parse()?;
        let options = options.application_name("harken");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(PostgresStore { pool, clock })
    }

    /// Applies pending migrations (embedded from `migrations/postgres/`). Safe to run from several
    /// nodes at once: sqlx serialises them with an advisory lock.
    pub async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("./migrations/postgres").run(&self.pool).await?;
        Ok(())
    }

    /// The pool, for tests and tools that need raw SQL.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Forwards notifications to `on_wake` until the process ends. `recv` reconnects by itself after
/// a lost connection; notifications sent meanwhile are gone, so each reconnect wakes everyone.
async fn listen_loop(mut listener: PgListener, on_wake: WakeFn) {
    let mut failing = false;
    loop {
        match listener.recv().await {
            Ok(n) => {
                if failing {
                    tracing::info!("listening for wake-ups again");
                    failing = false;
                    on_wake(Wake::Task);
                    on_wake(Wake::Callback);
                }
                match n.channel() {
                    TASKS_CHANNEL => on_wake(Wake::Task),
                    CALLBACKS_CHANNEL => on_wake(Wake::Callback),
                    _ => {}
                }
            }
            Err(err) => {
                if !failing {
                    tracing::warn!(error = %err, "lost the LISTEN connection; polling until it is back");
                    failing = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn create_key(&self, new: NewKey) -> Result<CreatedKey> {
        keys::create(&self.pool, new, self.now()).await
    }
    async fn authenticate(&self, secret: &str) -> Result<Option<crate::ApiKey>> {
        keys::by_hash(&self.pool, &crate::sha256_hex(secret)).await
    }
    async fn key(&self, key_id: &str) -> Result<Option<crate::ApiKey>> {
        keys::by_id(&self.pool, key_id).await
    }
    async fn list_keys(&self) -> Result<Vec<crate::ApiKey>> {
        keys::list(&self.pool).await
    }
    async fn available_credits(&self, key_id: &str) -> Result<Credits> {
        Ok(keys::by_id(&self.pool, key_id).await?.map(|k| k.available()).unwrap_or_default())
    }

    async fn create_task(&self, new: NewTask) -> Result<TaskRecord> {
        tasks::create(&self.pool, new, self.now()).await
    }
    async fn task(&self, task_id: &str) -> Result<Option<TaskRecord>> {
        tasks::get(&self.pool, task_id, None).await
    }
    async fn task_for_key(&self, key_id: &str, task_id: &str) -> Result<Option<TaskRecord>> {
        tasks::get(&self.pool, task_id, Some(key_id)).await
    }
    async fn claim_next(&self, owner: &str, lease: Duration) -> Result<Option<TaskRecord>> {
        tasks::claim_next(&self.pool, owner, self.now(), ms(lease)).await
    }
    async fn heartbeat(&self, task_id: &str, owner: &str, lease: Duration) -> Result<()> {
        tasks::heartbeat(&self.pool, task_id, owner, self.now() + ms(lease)).await
    }
    async fn set_progress(&self, task_id: &str, owner: &str, state: TaskState, progress: u8) -> Result<()> {
        tasks::set_progress(&self.pool, task_id, owner, state, progress, self.now()).await
    }
    async fn reserve_credits(&self, task_id: &str, owner: &str, cost: Credits) -> Result<()> {
        tasks::reserve(&self.pool, task_id, owner, cost).await
    }
    async fn finish_success(&self, task_id: &str, owner: &str, result_json: &str) -> Result<TaskRecord> {
        let outcome = tasks::Outcome::Success { result_json };
        tasks::finish(&self.pool, task_id, owner, outcome, self.now()).await
    }
    async fn finish_fail(&self, task_id: &str, owner: &str, fail_code: &str, fail_msg: &str) -> Result<TaskRecord> {
        let outcome = tasks::Outcome::Fail { fail_code, fail_msg };
        tasks::finish(&self.pool, task_id, owner, outcome, self.now()).await
    }
    async fn release(&self, task_id: &str, owner: &str) -> Result<()> {
        tasks::release(&self.pool, task_id, owner, self.now()).await
    }
    async fn reclaim_expired(&self, max_attempts: u32) -> Result<Reclaimed> {
        tasks::reclaim_expired(&self.pool, max_attempts, self.now()).await
    }

    async fn backlog(&self) -> Result<crate::Backlog> {
        let row = sqlx::query(crate::rows::BACKLOG_QUERY).fetch_one(&self.pool).await?;
        crate::rows::backlog(&row, self.now())
    }

    async fn claim_callbacks(&self, limit: u32, lease: Duration) -> Result<Vec<CallbackDelivery>> {
        outbox::claim(&self.pool, limit, self.now(), ms(lease)).await
    }
    async fn record_callback_attempt(
        &self,
        delivery_id: i64,
        outcome: &AttemptOutcome,
        schedule: &RetrySchedule,
    ) -> Result<CallbackDelivery> {
        outbox::record_attempt(&self.pool, delivery_id, outcome, schedule, self.now()).await
    }
    async fn callback_for_task(&self, task_id: &str) -> Result<Option<CallbackDelivery>> {
        outbox::for_task(&self.pool, task_id).await
    }

    async fn create_file(&self, new: NewFile) -> Result<FileRecord> {
        files::create(&self.pool, new, self.now()).await
    }
    async fn file(&self, file_id: &str) -> Result<Option<FileRecord>> {
        files::get(&self.pool, file_id, self.now()).await
    }
    async fn expired_files(&self, limit: u32) -> Result<Vec<FileRecord>> {
        files::expired(&self.pool, limit, self.now()).await
    }
    async fn delete_file(&self, file_id: &str) -> Result<bool> {
        files::delete(&self.pool, file_id).await
    }

    async fn watch(&self, on_wake: WakeFn) -> Result<Option<tokio::task::JoinHandle<()>>> {
        // LISTEN is in place before this returns, so a caller that queries afterwards misses
        // nothing committed after its query.
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen_all([TASKS_CHANNEL, CALLBACKS_CHANNEL]).await?;
        Ok(Some(tokio::spawn(listen_loop(listener, on_wake))))
    }
}
