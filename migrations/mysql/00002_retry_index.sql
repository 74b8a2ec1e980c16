-- +goose Up
-- The relay asks, before each read, which keys wait for a retry: rows with
-- attempts > 0 that are not available yet. Almost no row has attempts > 0,
-- so this index (which also holds id, the primary key) answers from a
-- handful of entries. PostgreSQL and SQLite use their partial index.
CREATE INDEX outbox_messages_retrying ON outbox_messages (attempts, available_at, shard, key_hash);

-- +goose Down
DROP INDEX outbox_messages_retrying ON outbox_messages;
