-- Uploaded files (Kie.ai file API); the same table as migrations/sqlite/0002_files.sql. Bytes live in the file directory under the row's id; a row
-- is written only after its bytes are complete, and the sweeper deletes bytes before the row.

CREATE TABLE files (
    id             TEXT PRIMARY KEY,             -- file_<ulid>: unguessable, the download capability
    key_id         TEXT NOT NULL REFERENCES api_keys(id),
    file_name      TEXT NOT NULL,
    original_name  TEXT NOT NULL,
    upload_path    TEXT NOT NULL,
    mime_type      TEXT NOT NULL,
    size_bytes     BIGINT NOT NULL CHECK (size_bytes > 0),
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);

CREATE INDEX files_expiry ON files (expires_at);
