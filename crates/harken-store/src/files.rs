//! Uploaded files: the metadata the store keeps for each one. The bytes live elsewhere (the
//! object store, [`crate::blobs`]); a row exists only once its bytes are stored.

use std::time::Duration;

/// What `create_file` needs. The store stamps the upload time and computes the expiry from
/// its own clock, so expiry and the sweeper agree on what "now" is.
#[derive(Debug, Clone)]
pub struct NewFile {
    /// From [`crate::new_id`]`("file")`: unguessable, so it doubles as the download capability.
    pub id: String,
    pub key_id: String,
    /// The name in the download URL (sanitised).
    pub file_name: String,
    /// The name the client had for it (multipart filename, URL path, or `file_name`).
    pub original_name: String,
    pub upload_path: String,
    /// By content, e.g. `audio/wav`.
    pub mime_type: String,
    pub size_bytes: u64,
    /// How long the file is kept.
    pub ttl: Duration,
}

/// One uploaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub id: String,
    pub key_id: String,
    pub file_name: String,
    pub original_name: String,
    pub upload_path: String,
    pub mime_type: String,
    pub size_bytes: u64,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}
