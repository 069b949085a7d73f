//! The store's error type.

/// What can go wrong in the store. Callers match the expected outcomes; `Database` and
/// `Migration` are internal failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The key's available credits do not cover the request.
    #[error("insufficient credits: {available} available, {needed} needed")]
    InsufficientCredits { available: crate::Credits, needed: crate::Credits },
    /// The task is not (or no longer) leased to this worker, or is already final.
    #[error("task {task_id} is not leased to {owner}")]
    LeaseLost { task_id: String, owner: String },
    #[error("unknown {what}: {id}")]
    NotFound { what: &'static str, id: String },
    /// A stored value the code does not understand: a bug or a newer schema.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A setting that names the store is wrong (the message names it).
    #[error("{0}")]
    Config(String),
    /// The object store (files shared by nodes) failed.
    #[error("object store error: {0}")]
    Blob(#[from] object_store::Error),
}
