//! Tasks on PostgreSQL: creation under the credit check, claims with `FOR UPDATE SKIP LOCKED`,
//! leases, progress, and the final transition that charges credits and queues the callback in
//! one transaction.
//!
//! Many nodes run these statements at once, so every read that decides a write locks its row
//! (`FOR UPDATE`): under READ COMMITTED a transaction that waited for the lock re-checks its
//! condition on the row as the other one left it. That is what makes the final transition happen
//! once (the loser finds the task final, `LeaseLost`) and the charge with it.
//! Lock order is always task rows (by id) before the key row, so these transactions cannot
//! deadlock one another.

use harken_types::TaskState;
use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::rows::{self, TASK_COLUMNS};
use crate::{Credits, NewTask, Reclaimed, Result, StoreError, TaskRecord};

/// States in which a worker holds the task's lease.
const ACTIVE: &str = "state IN ('queuing', 'generating')";

pub(super) async fn create(pool: &PgPool, new: NewTask, now: i64) -> Result<TaskRecord> {
    // The credit check and the insert are one statement: no window in which credits change.
    let sql = format!(
        "INSERT INTO tasks (id, key_id, model, param, callback_url, state, created_at, updated_at) \
         SELECT $1, $2, $3, $4, $5, 'waiting', $6, $6 \
         WHERE EXISTS (SELECT 1 FROM api_keys WHERE id = $2 AND credits - reserved > 0) \
         RETURNING {TASK_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(&new.id)
        .bind(&new.key_id)
        .bind(&new.model)
        .bind(&new.param)
        .bind(&new.callback_url)
        .bind(now)
        .fetch_optional(pool)
        .await?;
    match row {
        Some(row) => rows::task(&row),
        None => {
            let available: Option<i64> = sqlx::query_scalar("SELECT credits - reserved FROM api_keys WHERE id = $1")
                .bind(&new.key_id)
                .fetch_optional(pool)
                .await?;
            match available {
                None => Err(StoreError::NotFound { what: "api key", id: new.key_id }),
                Some(a) => Err(StoreError::InsufficientCredits {
                    available: Credits::from_millis(a),
                    needed: Credits::from_millis(1),
                }),
            }
        }
    }
}

pub(super) async fn get(pool: &PgPool, id: &str, key_id: Option<&str>) -> Result<Option<TaskRecord>> {
    let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1 AND ($2 IS NULL OR key_id = $2)");
    let row = sqlx::query(&sql).bind(id).bind(key_id).fetch_optional(pool).await?;
    row.as_ref().map(rows::task).transpose()
}

pub(super) async fn claim_next(pool: &PgPool, owner: &str, now: i64, lease_ms: i64) -> Result<Option<TaskRecord>> {
    let sql = format!(
        "UPDATE tasks SET state = 'queuing', progress = 0, attempts = attempts + 1, \
             lease_owner = $1, lease_expires_at = $2, updated_at = $3, \
             started_at = COALESCE(started_at, $3) \
         WHERE id = (SELECT id FROM tasks WHERE state = 'waiting' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
           AND state = 'waiting' \
         RETURNING {TASK_COLUMNS}"
    );
    let row = sqlx::query(&sql).bind(owner).bind(now + lease_ms).bind(now).fetch_optional(pool).await?;
    row.as_ref().map(rows::task).transpose()
}

fn lease_lost(task_id: &str, owner: &str) -> StoreError {
    StoreError::LeaseLost { task_id: task_id.to_owned(), owner: owner.to_owned() }
}

pub(super) async fn heartbeat(pool: &PgPool, id: &str, owner: &str, until: i64) -> Result<()> {
    let sql = format!("UPDATE tasks SET lease_expires_at = $3 WHERE id = $1 AND lease_owner = $2 AND {ACTIVE}");
    let done = sqlx::query(&sql).bind(id).bind(owner).bind(until).execute(pool).await?;
    if done.rows_affected() == 0 {
        return Err(lease_lost(id, owner));
    }
    Ok(())
}

pub(super) async fn set_progress(
    pool: &PgPool,
    id: &str,
    owner: &str,
    state: TaskState,
    progress: u8,
    now: i64,
) -> Result<()> {
    assert!(!state.is_final(), "bug: set_progress to final state {state:?}; use finish_*");
    let sql = format!(
        "UPDATE tasks SET state = $3, progress = $4, updated_at = $5 \
         WHERE id = $1 AND lease_owner = $2 AND {ACTIVE}"
    );
    let done = sqlx::query(&sql)
        .bind(id)
        .bind(owner)
        .bind(state.as_str())
        .bind(i64::from(progress.min(100)))
        .bind(now)
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(lease_lost(id, owner));
    }
    Ok(())
}

/// The leased task's key and current reservation, or `LeaseLost`.
async fn leased(tx: &mut Transaction<'_, Postgres>, id: &str, owner: &str) -> Result<(String, i64, Option<String>)> {
    let sql = format!(
        "SELECT key_id, reserved_credits, callback_url FROM tasks \
         WHERE id = $1 AND lease_owner = $2 AND {ACTIVE} FOR UPDATE"
    );
    let row = sqlx::query(&sql).bind(id).bind(owner).fetch_optional(&mut **tx).await?;
    let row = row.ok_or_else(|| lease_lost(id, owner))?;
    Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
}

pub(super) async fn reserve(pool: &PgPool, id: &str, owner: &str, cost: Credits) -> Result<()> {
    let mut tx = pool.begin().await?;
    let (key_id, old, _) = leased(&mut tx, id, owner).await?;
    let new = cost.millis().max(0);
    let done = sqlx::query(
        "UPDATE api_keys SET reserved = reserved - $2 + $3 \
         WHERE id = $1 AND credits - (reserved - $2) >= $3",
    )
    .bind(&key_id)
    .bind(old)
    .bind(new)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        let available: i64 = sqlx::query_scalar("SELECT credits - reserved + $2 FROM api_keys WHERE id = $1")
            .bind(&key_id)
            .bind(old)
            .fetch_one(&mut *tx)
            .await?;
        return Err(StoreError::InsufficientCredits { available: Credits::from_millis(available), needed: cost });
    }
    sqlx::query("UPDATE tasks SET reserved_credits = $2 WHERE id = $1").bind(id).bind(new).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) enum Outcome<'a> {
    Success { result_json: &'a str },
    Fail { fail_code: &'a str, fail_msg: &'a str },
}

pub(super) async fn finish(pool: &PgPool, id: &str, owner: &str, outcome: Outcome<'_>, now: i64) -> Result<TaskRecord> {
    let mut tx = pool.begin().await?;
    let (key_id, reserved, callback) = leased(&mut tx, id, owner).await?;
    let task = finish_in(&mut tx, id, &key_id, reserved, callback.as_deref(), outcome, now).await?;
    tx.commit().await?;
    Ok(task)
}

/// The final transition: task state, charge (the reservation on success, nothing on failure),
/// and the outbox row, all inside the caller's transaction.
async fn finish_in(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
    key_id: &str,
    reserved: i64,
    callback: Option<&str>,
    outcome: Outcome<'_>,
    now: i64,
) -> Result<TaskRecord> {
    let (state, charge, result, code, msg) = match outcome {
        Outcome::Success { result_json } => ("success", reserved, Some(result_json), None, None),
        Outcome::Fail { fail_code, fail_msg } => ("fail", 0, None, Some(fail_code), Some(fail_msg)),
    };
    let remained: i64 = sqlx::query_scalar(
        "UPDATE api_keys SET credits = credits - $2, reserved = reserved - $3 WHERE id = $1 \
         RETURNING credits - reserved",
    )
    .bind(key_id)
    .bind(charge)
    .bind(reserved)
    .fetch_one(&mut **tx)
    .await?;
    let sql = format!(
        "UPDATE tasks SET state = $2, progress = CASE WHEN $2 = 'success' THEN 100 ELSE progress END, \
             result_json = $3, fail_code = $4, fail_msg = $5, credits_consumed = $6, \
             reserved_credits = 0, remained_credits = $7, lease_owner = NULL, lease_expires_at = NULL, \
             updated_at = $8, completed_at = $8 \
         WHERE id = $1 RETURNING {TASK_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(state)
        .bind(result)
        .bind(code)
        .bind(msg)
        .bind(charge)
        .bind(remained)
        .bind(now)
        .fetch_one(&mut **tx)
        .await?;
    if let Some(url) = callback {
        sqlx::query(
            "INSERT INTO callback_outbox (task_id, key_id, url, status, next_attempt_at, created_at, updated_at) \
             VALUES ($1, $2, $3, 'pending', $4, $4, $4)",
        )
        .bind(id)
        .bind(key_id)
        .bind(url)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    rows::task(&row)
}

/// Back to `waiting`, reservation released. `uncount` forgives the attempt (graceful release).
async fn requeue_in(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
    key_id: &str,
    reserved: i64,
    uncount: bool,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE api_keys SET reserved = reserved - $2 WHERE id = $1")
        .bind(key_id)
        .bind(reserved)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE tasks SET state = 'waiting', progress = 0, reserved_credits = 0, lease_owner = NULL, \
             lease_expires_at = NULL, updated_at = $2, \
             attempts = CASE WHEN $3 THEN GREATEST(attempts - 1, 0) ELSE attempts END \
         WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .bind(uncount)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn release(pool: &PgPool, id: &str, owner: &str, now: i64) -> Result<()> {
    let mut tx = pool.begin().await?;
    let (key_id, reserved, _) = leased(&mut tx, id, owner).await?;
    requeue_in(&mut tx, id, &key_id, reserved, true, now).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn reclaim_expired(pool: &PgPool, max_attempts: u32, now: i64) -> Result<Reclaimed> {
    let mut tx = pool.begin().await?;
    let sql = format!(
        "SELECT id, key_id, reserved_credits, callback_url, attempts FROM tasks \
         WHERE {ACTIVE} AND lease_expires_at < $1 ORDER BY id FOR UPDATE SKIP LOCKED"
    );
    let expired = sqlx::query(&sql).bind(now).fetch_all(&mut *tx).await?;
    let mut done = Reclaimed::default();
    for row in &expired {
        let id: String = row.try_get(0)?;
        let key_id: String = row.try_get(1)?;
        let reserved: i64 = row.try_get(2)?;
        let callback: Option<String> = row.try_get(3)?;
        let attempts: i64 = row.try_get(4)?;
        if attempts >= i64::from(max_attempts) {
            let msg = format!(
                "the task was interrupted {attempts} times (its worker stopped while processing it); giving up"
            );
            let outcome = Outcome::Fail { fail_code: "500", fail_msg: &msg };
            finish_in(&mut tx, &id, &key_id, reserved, callback.as_deref(), outcome, now).await?;
            done.failed += 1;
        } else {
            requeue_in(&mut tx, &id, &key_id, reserved, false, now).await?;
            done.requeued += 1;
        }
    }
    tx.commit().await?;
    Ok(done)
}
