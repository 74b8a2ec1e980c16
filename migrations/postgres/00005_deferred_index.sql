-- +goose NO TRANSACTION
-- Built CONCURRENTLY, outside a transaction, as 00003 (see there).

-- +goose Up
-- The rows that were ever not available when a relay read them: delayed
-- at enqueue, or scheduled for a retry (available_at > created_at). A
-- relay reads above a floor under which its shards hold no live row, and
-- must keep that floor below these rows, which its reads pass by; this
-- partial index finds the lowest of them without walking the table. Rows
-- enqueued for now never enter it: an insert pays only the test of the
-- condition.
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_messages_deferred ON outbox_messages (id) WHERE available_at > created_at;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS outbox_messages_deferred;
