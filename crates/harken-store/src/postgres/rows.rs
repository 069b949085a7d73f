//! Row → record conversions for PostgreSQL (the same columns as the SQLite backend selects).

use harken_types::TaskState;
use sqlx::postgres::PgRow;
use sqlx::Row;

use crate::{ApiKey, CallbackDelivery, Credits, DeliveryStatus, Result, StoreError, TaskRecord};

pub(crate) const KEY_COLUMNS: &str = "id, name, webhook_secret, credits, reserved, created_at";

pub(crate) const TASK_COLUMNS: &str = "id, key_id, model, param, callback_url, state, progress, \
    result_json, fail_code, fail_msg, reserved_credits, credits_consumed, remained_credits, \
    attempts, lease_owner, created_at, updated_at, started_at, completed_at";

pub(crate) const OUTBOX_COLUMNS: &str = "id, task_id, key_id, url, status, attempts, \
    next_attempt_at, last_status, last_response, last_error";

pub(crate) fn key(row: &PgRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        webhook_secret: row.try_get("webhook_secret")?,
        credits: Credits::from_millis(row.try_get("credits")?),
        reserved: Credits::from_millis(row.try_get("reserved")?),
        created_at_ms: row.try_get("created_at")?,
    })
}

pub(crate) fn task(row: &PgRow) -> Result<TaskRecord> {
    let state: String = row.try_get("state")?;
    let state = TaskState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("task state {state:?}")))?;
    let progress: i64 = row.try_get("progress")?;
    let attempts: i64 = row.try_get("attempts")?;
    let remained: Option<i64> = row.try_get("remained_credits")?;
    Ok(TaskRecord {
        id: row.try_get("id")?,
        key_id: row.try_get("key_id")?,
        model: row.try_get("model")?,
        param: row.try_get("param")?,
        callback_url: row.try_get("callback_url")?,
        state,
        progress: progress.clamp(0, 100) as u8,
        result_json: row.try_get("result_json")?,
        fail_code: row.try_get("fail_code")?,
        fail_msg: row.try_get("fail_msg")?,
        reserved_credits: Credits::from_millis(row.try_get("reserved_credits")?),
        credits_consumed: Credits::from_millis(row.try_get("credits_consumed")?),
        remained_credits: remained.map(Credits::from_millis),
        attempts: attempts.max(0) as u32,
        lease_owner: row.try_get("lease_owner")?,
        created_at_ms: row.try_get("created_at")?,
        updated_at_ms: row.try_get("updated_at")?,
        started_at_ms: row.try_get("started_at")?,
        completed_at_ms: row.try_get("completed_at")?,
    })
}

pub(crate) fn delivery(row: &PgRow) -> Result<CallbackDelivery> {
    let status: String = row.try_get("status")?;
    let status =
        DeliveryStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("delivery status {status:?}")))?;
    let attempts: i64 = row.try_get("attempts")?;
    let last_status: Option<i64> = row.try_get("last_status")?;
    Ok(CallbackDelivery {
        id: row.try_get("id")?,
        task_id: row.try_get("task_id")?,
        key_id: row.try_get("key_id")?,
        url: row.try_get("url")?,
        status,
        attempts: attempts.max(0) as u32,
        next_attempt_at_ms: row.try_get("next_attempt_at")?,
        last_status: last_status.and_then(|s| u16::try_from(s).ok()),
        last_response: row.try_get("last_response")?,
        last_error: row.try_get("last_error")?,
    })
}
