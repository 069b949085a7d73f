//! The SQLite implementation: one database file, WAL, one writer connection and a few readers.
//!
//! SQLite allows one writer at a time. Giving writes a pool of exactly one connection makes that
//! explicit inside a process: write transactions queue in the pool, and claims (`UPDATE ...
//! RETURNING` over a sub-select) cannot hand one task to two workers. Readers run beside the
//! writer thanks to WAL.
//!
//! Several processes may write the same file (`harken serve --role api` beside `harken worker`
//! on one data dir, `harken keys create` while a server runs). For them:
//! - every write transaction starts with `BEGIN IMMEDIATE` ([`begin_write`]). A plain (deferred)
//!   `BEGIN` that reads first holds a snapshot; if another process commits before it writes, the
//!   upgrade to a write fails at once with `SQLITE_BUSY` ("database is locked") — `busy_timeout`
//!   cannot help, since waiting would not make the snapshot current. Taking the write lock first
//!   turns that into a wait;
//! - `busy_timeout` makes that wait (and single-statement writes) block instead of failing;
//! - migrations run inside one `BEGIN IMMEDIATE` transaction, so processes starting together on a
//!   new file apply them once, one after the other;
//! - turning a new file into WAL needs an exclusive lock that `busy_timeout` does not wait for, so
//!   a process connecting while another does that gets `SQLITE_BUSY` at once: connecting is
//!   retried ([`connect`]).

mod files;
mod keys;
mod outbox;
mod tasks;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harken_types::TaskState;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::{
    AttemptOutcome, CallbackDelivery, Clock, CreatedKey, Credits, FileRecord, NewFile, NewKey, NewTask, Reclaimed,
    Result, RetrySchedule, Store, SystemClock, TaskRecord,
};

/// The database file's name inside the data dir.
pub const DB_FILE: &str = "harken.db";

/// How long a write waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// [`Store`] on one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    clock: Arc<dyn Clock>,
}

impl SqliteStore {
    /// Opens (creating if needed) `data_dir/harken.db` and applies pending migrations.
    pub async fn open_dir(data_dir: &Path) -> Result<Self> {
        Self::open(&data_dir.join(DB_FILE), Arc::new(SystemClock)).await
    }

    /// Opens the database file at `path` with the given clock and applies pending migrations.
    pub async fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let writer = connect(&options, 1).await?;
        migrate(&writer).await?;
        let reader = connect(&options.read_only(true), 4).await?;
        Ok(SqliteStore { writer, reader, clock })
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Closes both pools, waiting for connections in use.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// A pool of at most `max` connections, its first one opened now. While another process turns a
/// new file into WAL, opening fails at once with `SQLITE_BUSY` (`PRAGMA journal_mode` does not
/// wait on `busy_timeout`), so that is retried for up to [`BUSY_TIMEOUT`]. Once the file is in
/// WAL the pragma changes nothing and takes no lock.
async fn connect(options: &SqliteConnectOptions, max: u32) -> Result<SqlitePool> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match SqlitePoolOptions::new().max_connections(max).connect_with(options.clone()).await {
            Err(e) if is_busy(&e) && Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            pool => return Ok(pool?),
        }
    }
}

/// `SQLITE_BUSY` or one of its extended codes ("database is locked").
fn is_busy(e: &sqlx::Error) -> bool {
    let code = e.as_database_error().and_then(|db| db.code()).and_then(|c| c.parse::<i32>().ok());
    code.is_some_and(|c| c & 0xff == 5)
}

/// Applies pending migrations under the write lock: another process migrating the same file at
/// the same moment waits, then finds them applied. (sqlx's SQLite migrator takes no lock of its
/// own; inside a transaction each migration runs in a savepoint.)
async fn migrate(writer: &SqlitePool) -> Result<()> {
    let mut tx = begin_write(writer).await?;
    sqlx::migrate!("./migrations/sqlite").run_direct(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// A write transaction holding SQLite's write lock from its first statement (see the module docs).
pub(crate) async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn create_key(&self, new: NewKey) -> Result<CreatedKey> {
        keys::create(&self.writer, new, self.now()).await
    }
    async fn authenticate(&self, secret: &str) -> Result<Option<crate::ApiKey>> {
        keys::by_hash(&self.reader, &crate::sha256_hex(secret)).await
    }
    async fn key(&self, key_id: &str) -> Result<Option<crate::ApiKey>> {
        keys::by_id(&self.reader, key_id).await
    }
    async fn list_keys(&self) -> Result<Vec<crate::ApiKey>> {
        keys::list(&self.reader).await
    }
    async fn available_credits(&self, key_id: &str) -> Result<Credits> {
        Ok(keys::by_id(&self.reader, key_id).await?.map(|k| k.available()).unwrap_or_default())
    }

    async fn create_task(&self, new: NewTask) -> Result<TaskRecord> {
        tasks::create(&self.writer, new, self.now()).await
    }
    async fn task(&self, task_id: &str) -> Result<Option<TaskRecord>> {
        tasks::get(&self.reader, task_id, None).await
    }
    async fn task_for_key(&self, key_id: &str, task_id: &str) -> Result<Option<TaskRecord>> {
        tasks::get(&self.reader, task_id, Some(key_id)).await
    }
    async fn claim_next(&self, owner: &str, lease: Duration) -> Result<Option<TaskRecord>> {
        tasks::claim_next(&self.writer, owner, self.now(), ms(lease)).await
    }
    async fn heartbeat(&self, task_id: &str, owner: &str, lease: Duration) -> Result<()> {
        tasks::heartbeat(&self.writer, task_id, owner, self.now() + ms(lease)).await
    }
    async fn set_progress(&self, task_id: &str, owner: &str, state: TaskState, progress: u8) -> Result<()> {
        tasks::set_progress(&self.writer, task_id, owner, state, progress, self.now()).await
    }
    async fn reserve_credits(&self, task_id: &str, owner: &str, cost: Credits) -> Result<()> {
        tasks::reserve(&self.writer, task_id, owner, cost).await
    }
    async fn finish_success(&self, task_id: &str, owner: &str, result_json: &str) -> Result<TaskRecord> {
        let outcome = tasks::Outcome::Success { result_json };
        tasks::finish(&self.writer, task_id, owner, outcome, self.now()).await
    }
    async fn finish_fail(&self, task_id: &str, owner: &str, fail_code: &str, fail_msg: &str) -> Result<TaskRecord> {
        let outcome = tasks::Outcome::Fail { fail_code, fail_msg };
        tasks::finish(&self.writer, task_id, owner, outcome, self.now()).await
    }
    async fn release(&self, task_id: &str, owner: &str) -> Result<()> {
        tasks::release(&self.writer, task_id, owner, self.now()).await
    }
    async fn reclaim_expired(&self, max_attempts: u32) -> Result<Reclaimed> {
        tasks::reclaim_expired(&self.writer, max_attempts, self.now()).await
    }

    async fn backlog(&self) -> Result<crate::Backlog> {
        let row = sqlx::query(crate::rows::BACKLOG_QUERY).fetch_one(&self.reader).await?;
        crate::rows::backlog(&row, self.now())
    }

    async fn claim_callbacks(&self, limit: u32, lease: Duration) -> Result<Vec<CallbackDelivery>> {
        outbox::claim(&self.writer, limit, self.now(), ms(lease)).await
    }
    async fn record_callback_attempt(
        &self,
        delivery_id: i64,
        outcome: &AttemptOutcome,
        schedule: &RetrySchedule,
    ) -> Result<CallbackDelivery> {
        outbox::record_attempt(&self.writer, delivery_id, outcome, schedule, self.now()).await
    }
    async fn callback_for_task(&self, task_id: &str) -> Result<Option<CallbackDelivery>> {
        outbox::for_task(&self.reader, task_id).await
    }

    async fn create_file(&self, new: NewFile) -> Result<FileRecord> {
        files::create(&self.writer, new, self.now()).await
    }
    async fn file(&self, file_id: &str) -> Result<Option<FileRecord>> {
        files::get(&self.reader, file_id, self.now()).await
    }
    async fn expired_files(&self, limit: u32) -> Result<Vec<FileRecord>> {
        files::expired(&self.reader, limit, self.now()).await
    }
    async fn delete_file(&self, file_id: &str) -> Result<bool> {
        files::delete(&self.writer, file_id).await
    }
}
