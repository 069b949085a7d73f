//! The callback outbox on PostgreSQL: rows written with a task's final state, leased to one
//! dispatcher at a time (`FOR UPDATE SKIP LOCKED`: two nodes never take the same due row), then
//! marked delivered, rescheduled or given up.

use sqlx::PgPool;

use crate::rows::{self, OUTBOX_COLUMNS};
use crate::{AttemptOutcome, CallbackDelivery, DeliveryStatus, Result, RetrySchedule, StoreError};

/// Longest receiver response kept, in characters.
const RESPONSE_KEEP_CHARS: usize = 512;

pub(super) async fn claim(pool: &PgPool, limit: u32, now: i64, lease_ms: i64) -> Result<Vec<CallbackDelivery>> {
    // Pushing next_attempt_at forward is the lease: a dispatcher that dies mid-delivery leaves the
    // row due again once the lease has passed (at-least-once). SKIP LOCKED makes a second node
    // claiming at the same instant pass over rows the first is taking; a row it read before the
    // first committed is re-checked against the new next_attempt_at and dropped.
    let sql = format!(
        "UPDATE callback_outbox SET next_attempt_at = $2, updated_at = $1 \
         WHERE id IN (SELECT id FROM callback_outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
                      ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING {OUTBOX_COLUMNS}"
    );
    let rows = sqlx::query(&sql).bind(now).bind(now + lease_ms).bind(i64::from(limit)).fetch_all(pool).await?;
    let mut out: Vec<CallbackDelivery> = rows.iter().map(rows::delivery).collect::<Result<_>>()?;
    out.sort_by_key(|d| d.id);
    Ok(out)
}

fn truncate(s: &str) -> String {
    match s.char_indices().nth(RESPONSE_KEEP_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

pub(super) async fn record_attempt(
    pool: &PgPool,
    id: i64,
    outcome: &AttemptOutcome,
    schedule: &RetrySchedule,
    now: i64,
) -> Result<CallbackDelivery> {
    let mut tx = pool.begin().await?;
    let sql = format!("SELECT {OUTBOX_COLUMNS} FROM callback_outbox WHERE id = $1 FOR UPDATE");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *tx).await?;
    let current =
        rows::delivery(&row.ok_or_else(|| StoreError::NotFound { what: "callback delivery", id: id.to_string() })?)?;
    if current.status == DeliveryStatus::Delivered {
        // A dispatcher whose lease ran out reports late: the receiver has the callback already.
        tx.commit().await?;
        return Ok(current);
    }
    let attempts = i64::from(current.attempts) + 1;
    let (status, next) = if outcome.delivered {
        (DeliveryStatus::Delivered, now)
    } else {
        match schedule.next_delay(u32::try_from(attempts).unwrap_or(u32::MAX)) {
            Some(delay) => (DeliveryStatus::Pending, now + super::ms(delay)),
            None => (DeliveryStatus::Failed, now),
        }
    };
    let sql = format!(
        "UPDATE callback_outbox SET status = $2, attempts = $3, next_attempt_at = $4, last_status = $5, \
             last_response = $6, last_error = $7, updated_at = $8 \
         WHERE id = $1 RETURNING {OUTBOX_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(status.as_str())
        .bind(attempts)
        .bind(next)
        .bind(outcome.http_status.map(i64::from))
        .bind(outcome.response.as_deref().map(truncate))
        .bind(outcome.error.as_deref().map(truncate))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    rows::delivery(&row)
}

pub(super) async fn for_task(pool: &PgPool, task_id: &str) -> Result<Option<CallbackDelivery>> {
    let sql = format!("SELECT {OUTBOX_COLUMNS} FROM callback_outbox WHERE task_id = $1");
    let row = sqlx::query(&sql).bind(task_id).fetch_optional(pool).await?;
    row.as_ref().map(rows::delivery).transpose()
}
