-- harken's first schema. Times are Unix milliseconds; credits are integer millicredits.

CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,            -- key_<ulid>, safe to log
    secret_sha256   TEXT NOT NULL UNIQUE,        -- hex SHA-256 of the whole key; the key itself is never stored
    name            TEXT,
    webhook_secret  TEXT,                        -- HMAC secret for callbacks; NULL = unsigned
    credits         INTEGER NOT NULL CHECK (credits >= 0),
    reserved        INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= credits),
    created_at      INTEGER NOT NULL
);

CREATE TABLE tasks (
    id                TEXT PRIMARY KEY,          -- task_<ulid>: unique and time-sortable
    key_id            TEXT NOT NULL REFERENCES api_keys(id),
    model             TEXT NOT NULL,
    param             TEXT NOT NULL,             -- the createTask body as received
    callback_url      TEXT,
    state             TEXT NOT NULL CHECK (state IN ('waiting','queuing','generating','success','fail')),
    progress          INTEGER NOT NULL DEFAULT 0,
    result_json       TEXT,
    fail_code         TEXT,
    fail_msg          TEXT,
    reserved_credits  INTEGER NOT NULL DEFAULT 0,
    credits_consumed  INTEGER NOT NULL DEFAULT 0,
    remained_credits  INTEGER,                   -- the key's credits right after the task ended
    attempts          INTEGER NOT NULL DEFAULT 0,
    lease_owner       TEXT,
    lease_expires_at  INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    started_at        INTEGER,
    completed_at      INTEGER
);

CREATE INDEX tasks_waiting ON tasks (id) WHERE state = 'waiting';
CREATE INDEX tasks_leased ON tasks (lease_expires_at) WHERE state IN ('queuing', 'generating');
CREATE INDEX tasks_by_key ON tasks (key_id, id);

CREATE TABLE callback_outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id          TEXT NOT NULL UNIQUE REFERENCES tasks(id),
    key_id           TEXT NOT NULL REFERENCES api_keys(id),
    url              TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending','delivered','failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_status      INTEGER,
    last_response    TEXT,                      -- truncated
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);

CREATE INDEX callback_outbox_due ON callback_outbox (next_attempt_at) WHERE status = 'pending';
