-- The local World's database, format version 1 (see docs/local-world.md).
-- Entities are stored as one codec-JSON body each (worlds_sdk.codec: bytes and
-- datetimes tagged) next to the columns that are keyed, filtered or sorted on.
-- Times are integer microseconds since the epoch (UTC).

CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS runs (
    run_id        TEXT PRIMARY KEY,
    workflow_name TEXT NOT NULL,
    status        TEXT NOT NULL,
    created_us    INTEGER NOT NULL,
    body          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_created ON runs (created_us, run_id);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status);

-- seq is the append order: the cursor of events.list and the order of the log.
CREATE TABLE IF NOT EXISTS events (
    seq            INTEGER PRIMARY KEY,
    run_id         TEXT NOT NULL,
    event_id       TEXT NOT NULL UNIQUE,
    event_type     TEXT NOT NULL,
    correlation_id TEXT,
    spec_version   INTEGER NOT NULL,
    created_us     INTEGER NOT NULL,
    data           TEXT
);
CREATE INDEX IF NOT EXISTS events_by_run ON events (run_id, seq);
CREATE INDEX IF NOT EXISTS events_by_correlation ON events (correlation_id, seq);

CREATE TABLE IF NOT EXISTS steps (
    run_id     TEXT NOT NULL,
    step_id    TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    body       TEXT NOT NULL,
    PRIMARY KEY (run_id, step_id)
);
CREATE INDEX IF NOT EXISTS steps_by_id ON steps (step_id);
CREATE INDEX IF NOT EXISTS steps_by_created ON steps (run_id, created_us, step_id);

-- A disposed hook stays as a tombstone (a second dispose is a conflict, not a
-- miss) but no longer holds its token: the unique index covers live hooks only.
CREATE TABLE IF NOT EXISTS hooks (
    hook_id    TEXT PRIMARY KEY,
    run_id     TEXT NOT NULL,
    token      TEXT NOT NULL,
    disposed   INTEGER NOT NULL DEFAULT 0,
    created_us INTEGER NOT NULL,
    body       TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS hooks_live_token ON hooks (token) WHERE disposed = 0;
CREATE INDEX IF NOT EXISTS hooks_by_run ON hooks (run_id, created_us, hook_id);
CREATE INDEX IF NOT EXISTS hooks_by_created ON hooks (created_us, hook_id);

CREATE TABLE IF NOT EXISTS waits (
    run_id  TEXT NOT NULL,
    wait_id TEXT NOT NULL,
    body    TEXT NOT NULL,
    PRIMARY KEY (run_id, wait_id)
);

-- A message is visible when visible_us <= now. Claiming sets visible_us to the
-- end of the lease and a fresh claim_id; settling clears claim_id. A claim_id
-- still set on a visible message means its holder died (counted as a failure).
CREATE TABLE IF NOT EXISTS messages (
    message_id      TEXT PRIMARY KEY,
    queue_name      TEXT NOT NULL,
    body            TEXT NOT NULL,
    headers         TEXT NOT NULL,
    deployment_id   TEXT,
    idempotency_key TEXT UNIQUE,
    attempt         INTEGER NOT NULL DEFAULT 0,
    failures        INTEGER NOT NULL DEFAULT 0,
    visible_us      INTEGER NOT NULL,
    claim_id        TEXT,
    created_us      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_visible ON messages (visible_us);

CREATE TABLE IF NOT EXISTS dead_letters (
    message_id    TEXT PRIMARY KEY,
    queue_name    TEXT NOT NULL,
    body          TEXT NOT NULL,
    headers       TEXT NOT NULL,
    deployment_id TEXT,
    attempt       INTEGER NOT NULL,
    failures      INTEGER NOT NULL,
    error         TEXT NOT NULL,
    dead_us       INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS streams (
    name       TEXT PRIMARY KEY,
    run_id     TEXT NOT NULL,
    tail_index INTEGER NOT NULL DEFAULT -1,
    done       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS streams_by_run ON streams (run_id, name);

CREATE TABLE IF NOT EXISTS chunks (
    name  TEXT NOT NULL,
    idx   INTEGER NOT NULL,
    data  BLOB NOT NULL,
    PRIMARY KEY (name, idx)
) WITHOUT ROWID;
