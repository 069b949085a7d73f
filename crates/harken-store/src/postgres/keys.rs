//! API keys: only the SHA-256 of a key is stored, so a leaked database leaks no usable key.

use sqlx::PgPool;

use crate::rows::{self, KEY_COLUMNS};
use crate::{ApiKey, CreatedKey, NewKey, Result};

pub(super) async fn create(pool: &PgPool, new: NewKey, now: i64) -> Result<CreatedKey> {
    let secret = crate::ids::new_secret();
    let sql = format!(
        "INSERT INTO api_keys (id, secret_sha256, name, webhook_secret, credits, reserved, created_at) \
         VALUES ($1, $2, $3, $4, $5, 0, $6) RETURNING {KEY_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(crate::new_id("key"))
        .bind(crate::sha256_hex(&secret))
        .bind(&new.name)
        .bind(&new.webhook_secret)
        .bind(new.credits.millis().max(0))
        .bind(now)
        .fetch_one(pool)
        .await?;
    Ok(CreatedKey { key: rows::key(&row)?, secret })
}

pub(super) async fn by_hash(pool: &PgPool, hash: &str) -> Result<Option<ApiKey>> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE secret_sha256 = $1");
    let row = sqlx::query(&sql).bind(hash).fetch_optional(pool).await?;
    row.as_ref().map(rows::key).transpose()
}

pub(super) async fn by_id(pool: &PgPool, id: &str) -> Result<Option<ApiKey>> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(pool).await?;
    row.as_ref().map(rows::key).transpose()
}

pub(super) async fn list(pool: &PgPool) -> Result<Vec<ApiKey>> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id");
    let rows = sqlx::query(&sql).fetch_all(pool).await?;
    rows.iter().map(rows::key).collect()
}
