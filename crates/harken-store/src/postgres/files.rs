//! Uploaded files' metadata (PostgreSQL). Expiry is decided here, with the store's clock: an expired file is
//! invisible to `get` even before the sweeper removes it.

use sqlx::PgPool;

use crate::rows::{file, FILE_COLUMNS};
use crate::{FileRecord, NewFile, Result};

pub(super) async fn create(pool: &PgPool, new: NewFile, now: i64) -> Result<FileRecord> {
    let sql = format!(
        "INSERT INTO files (id, key_id, file_name, original_name, upload_path, mime_type, size_bytes, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {FILE_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(&new.id)
        .bind(&new.key_id)
        .bind(&new.file_name)
        .bind(&new.original_name)
        .bind(&new.upload_path)
        .bind(&new.mime_type)
        .bind(i64::try_from(new.size_bytes).unwrap_or(i64::MAX))
        .bind(now)
        .bind(now.saturating_add(super::ms(new.ttl)))
        .fetch_one(pool)
        .await?;
    file(&row)
}

pub(super) async fn get(pool: &PgPool, id: &str, now: i64) -> Result<Option<FileRecord>> {
    let sql = format!("SELECT {FILE_COLUMNS} FROM files WHERE id = $1 AND expires_at > $2");
    let row = sqlx::query(&sql).bind(id).bind(now).fetch_optional(pool).await?;
    row.as_ref().map(file).transpose()
}

pub(super) async fn expired(pool: &PgPool, limit: u32, now: i64) -> Result<Vec<FileRecord>> {
    let sql = format!("SELECT {FILE_COLUMNS} FROM files WHERE expires_at <= $1 ORDER BY expires_at, id LIMIT $2");
    let rows = sqlx::query(&sql).bind(now).bind(i64::from(limit)).fetch_all(pool).await?;
    rows.iter().map(file).collect()
}

pub(super) async fn delete(pool: &PgPool, id: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM files WHERE id = $1").bind(id).execute(pool).await?;
    Ok(done.rows_affected() > 0)
}
