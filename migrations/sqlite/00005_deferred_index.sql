-- +goose Up
-- The rows that were ever not available when a relay read them (delayed,
-- or scheduled for a retry): a relay keeps the floor it reads above below
-- the lowest of them. See migrations/postgres/00005_deferred_index.sql.
CREATE INDEX IF NOT EXISTS outbox_messages_deferred ON outbox_messages (id) WHERE available_at > created_at;

-- +goose Down
DROP INDEX IF EXISTS outbox_messages_deferred;
