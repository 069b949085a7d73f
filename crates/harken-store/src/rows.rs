//! Row → record conversions shared by both backends, kept in one place so every query selects the
//! same columns and reads them the same way. Both schemas store ids, states and texts as text and
//! times, credits and counters as 64-bit integers, so one generic reader serves SQLite and
//! PostgreSQL rows alike ([`Columns`]).

use harken_types::TaskState;
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::{ApiKey, Backlog, CallbackDelivery, Credits, DeliveryStatus, FileRecord, Result, StoreError, TaskRecord};

pub(crate) const KEY_COLUMNS: &str = "id, name, webhook_secret, credits, reserved, created_at";

pub(crate) const TASK_COLUMNS: &str = "id, key_id, model, param, callback_url, state, progress, \
    result_json, fail_code, fail_msg, reserved_credits, credits_consumed, remained_credits, \
    attempts, lease_owner, created_at, updated_at, started_at, completed_at";

pub(crate) const OUTBOX_COLUMNS: &str = "id, task_id, key_id, url, status, attempts, \
    next_attempt_at, last_status, last_response, last_error";

pub(crate) const FILE_COLUMNS: &str =
    "id, key_id, file_name, original_name, upload_path, mime_type, size_bytes, created_at, expires_at";

/// One row of counts for [`backlog`]; the same SQL on both backends.
pub(crate) const BACKLOG_QUERY: &str = "SELECT \
    (SELECT COUNT(*) FROM tasks WHERE state = 'waiting') AS waiting, \
    (SELECT COUNT(*) FROM tasks WHERE state = 'queuing') AS queuing, \
    (SELECT COUNT(*) FROM tasks WHERE state = 'generating') AS generating, \
    (SELECT COUNT(*) FROM callback_outbox WHERE status = 'pending') AS callbacks_pending, \
    (SELECT MIN(created_at) FROM tasks WHERE state = 'waiting') AS oldest_waiting";

/// A row whose columns are read by name as text or 64-bit integers (nullable or not): any
/// `sqlx` row type whose database decodes `String` and `i64`.
pub(crate) trait Columns {
    fn text(&self, column: &str) -> Result<String>;
    fn opt_text(&self, column: &str) -> Result<Option<String>>;
    fn int(&self, column: &str) -> Result<i64>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>>;
}

impl<R> Columns for R
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, column: &str) -> Result<String> {
        Ok(self.try_get(column)?)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>> {
        Ok(self.try_get(column)?)
    }
    fn int(&self, column: &str) -> Result<i64> {
        Ok(self.try_get(column)?)
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>> {
        Ok(self.try_get(column)?)
    }
}

/// Reads [`BACKLOG_QUERY`]'s row; `now` (ms) dates the oldest waiting task.
pub(crate) fn backlog(row: &impl Columns, now: i64) -> Result<Backlog> {
    let count = |column| row.int(column).map(|n| n.max(0) as u64);
    Ok(Backlog {
        waiting: count("waiting")?,
        queuing: count("queuing")?,
        generating: count("generating")?,
        callbacks_pending: count("callbacks_pending")?,
        oldest_waiting: row
            .opt_int("oldest_waiting")?
            .map(|created| std::time::Duration::from_millis((now - created).max(0) as u64)),
    })
}

pub(crate) fn key(row: &impl Columns) -> Result<ApiKey> {
    Ok(ApiKey {
        id: row.text("id")?,
        name: row.opt_text("name")?,
        webhook_secret: row.opt_text("webhook_secret")?,
        credits: Credits::from_millis(row.int("credits")?),
        reserved: Credits::from_millis(row.int("reserved")?),
        created_at_ms: row.int("created_at")?,
    })
}

pub(crate) fn task(row: &impl Columns) -> Result<TaskRecord> {
    let state = row.text("state")?;
    let state = TaskState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("task state {state:?}")))?;
    Ok(TaskRecord {
        id: row.text("id")?,
        key_id: row.text("key_id")?,
        model: row.text("model")?,
        param: row.text("param")?,
        callback_url: row.opt_text("callback_url")?,
        state,
        progress: row.int("progress")?.clamp(0, 100) as u8,
        result_json: row.opt_text("result_json")?,
        fail_code: row.opt_text("fail_code")?,
        fail_msg: row.opt_text("fail_msg")?,
        reserved_credits: Credits::from_millis(row.int("reserved_credits")?),
        credits_consumed: Credits::from_millis(row.int("credits_consumed")?),
        remained_credits: row.opt_int("remained_credits")?.map(Credits::from_millis),
        attempts: row.int("attempts")?.max(0) as u32,
        lease_owner: row.opt_text("lease_owner")?,
        created_at_ms: row.int("created_at")?,
        updated_at_ms: row.int("updated_at")?,
        started_at_ms: row.opt_int("started_at")?,
        completed_at_ms: row.opt_int("completed_at")?,
    })
}

pub(crate) fn delivery(row: &impl Columns) -> Result<CallbackDelivery> {
    let status = row.text("status")?;
    let status =
        DeliveryStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("delivery status {status:?}")))?;
    Ok(CallbackDelivery {
        id: row.int("id")?,
        task_id: row.text("task_id")?,
        key_id: row.text("key_id")?,
        url: row.text("url")?,
        status,
        attempts: row.int("attempts")?.max(0) as u32,
        next_attempt_at_ms: row.int("next_attempt_at")?,
        last_status: row.opt_int("last_status")?.and_then(|s| u16::try_from(s).ok()),
        last_response: row.opt_text("last_response")?,
        last_error: row.opt_text("last_error")?,
    })
}

pub(crate) fn file(row: &impl Columns) -> Result<FileRecord> {
    Ok(FileRecord {
        id: row.text("id")?,
        key_id: row.text("key_id")?,
        file_name: row.text("file_name")?,
        original_name: row.text("original_name")?,
        upload_path: row.text("upload_path")?,
        mime_type: row.text("mime_type")?,
        size_bytes: row.int("size_bytes")?.max(0) as u64,
        created_at_ms: row.int("created_at")?,
        expires_at_ms: row.int("expires_at")?,
    })
}
