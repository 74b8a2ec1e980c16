-- +goose Up
-- Times are integer microseconds since the Unix epoch. AUTOINCREMENT makes
-- sure an id is never reused, even after the newest rows were deleted.
CREATE TABLE outbox_messages (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   TEXT NOT NULL UNIQUE,
    topic        TEXT NOT NULL,
    msg_key      BLOB,
    key_hash     INTEGER,
    payload      BLOB,
    headers      BLOB,
    shard        INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    available_at INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT
);
CREATE INDEX outbox_messages_shard_id ON outbox_messages (shard, id);
CREATE INDEX outbox_messages_waiting ON outbox_messages (shard, key_hash, id) WHERE attempts > 0;

CREATE TABLE outbox_shards (
    shard       INTEGER PRIMARY KEY,
    owner       TEXT,
    lease_until INTEGER,
    fence       INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE outbox_relays (
    relay_id     TEXT PRIMARY KEY,
    heartbeat_at INTEGER NOT NULL
);

CREATE TABLE outbox_dead_letters (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    topic      TEXT NOT NULL,
    msg_key    BLOB,
    key_hash   INTEGER,
    payload    BLOB,
    headers    BLOB,
    shard      INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL,
    last_error TEXT,
    dead_at    INTEGER NOT NULL
);
CREATE INDEX outbox_dead_letters_message_id ON outbox_dead_letters (message_id);

-- +goose Down
DROP TABLE outbox_dead_letters;
DROP TABLE outbox_relays;
DROP TABLE outbox_shards;
DROP TABLE outbox_messages;
