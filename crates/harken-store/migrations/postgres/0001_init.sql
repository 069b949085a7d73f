-- harken's first schema on PostgreSQL: the same tables as migrations/sqlite/0001_init.sql.
-- Times are Unix milliseconds written by the application's clock (not now()), so every backend
-- behaves alike under a test clock; credits are integer millicredits.

CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,            -- key_<ulid>, safe to log
    secret_sha256   TEXT NOT NULL UNIQUE,        -- hex SHA-256 of the whole key; the key itself is never stored
    name            TEXT,
    webhook_secret  TEXT,                        -- HMAC secret for callbacks; NULL = unsigned
    credits         BIGINT NOT NULL CHECK (credits >= 0),
    reserved        BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= credits),
    created_at      BIGINT NOT NULL
);

CREATE TABLE tasks (
    id                TEXT PRIMARY KEY,          -- task_<ulid>: unique and time-sortable
    key_id            TEXT NOT NULL REFERENCES api_keys(id),
    model             TEXT NOT NULL,
    param             TEXT NOT NULL,             -- the createTask body as received
    callback_url      TEXT,
    state             TEXT NOT NULL CHECK (state IN ('waiting','queuing','generating','success','fail')),
    progress          BIGINT NOT NULL DEFAULT 0,
    result_json       TEXT,
    fail_code         TEXT,
    fail_msg          TEXT,
    reserved_credits  BIGINT NOT NULL DEFAULT 0,
    credits_consumed  BIGINT NOT NULL DEFAULT 0,
    remained_credits  BIGINT,                    -- the key's credits right after the task ended
    attempts          BIGINT NOT NULL DEFAULT 0,
    lease_owner       TEXT,
    lease_expires_at  BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    started_at        BIGINT,
    completed_at      BIGINT
);

CREATE INDEX tasks_waiting ON tasks (id) WHERE state = 'waiting';
CREATE INDEX tasks_leased ON tasks (lease_expires_at) WHERE state IN ('queuing', 'generating');
CREATE INDEX tasks_by_key ON tasks (key_id, id);

CREATE TABLE callback_outbox (
    id               BIGSERIAL PRIMARY KEY,
    task_id          TEXT NOT NULL UNIQUE REFERENCES tasks(id),
    key_id           TEXT NOT NULL REFERENCES api_keys(id),
    url              TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending','delivered','failed')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    last_status      BIGINT,
    last_response    TEXT,                      -- truncated
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE INDEX callback_outbox_due ON callback_outbox (next_attempt_at) WHERE status = 'pending';

-- Wake-ups. A trigger sends the NOTIFY inside the very transaction that makes work available
-- (a new task, a requeued one, a new callback), so no code path can forget it, and PostgreSQL
-- delivers it only if that transaction commits. Notifications with the same payload in one
-- transaction are folded into one.
CREATE FUNCTION harken_notify_task() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('harken_tasks', '');
    RETURN NULL;
END $$;

CREATE TRIGGER tasks_notify_waiting
    AFTER INSERT OR UPDATE OF state ON tasks
    FOR EACH ROW WHEN (NEW.state = 'waiting')
    EXECUTE FUNCTION harken_notify_task();

CREATE FUNCTION harken_notify_callback() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('harken_callbacks', '');
    RETURN NULL;
END $$;

CREATE TRIGGER callback_outbox_notify
    AFTER INSERT ON callback_outbox
    FOR EACH ROW EXECUTE FUNCTION harken_notify_callback();
