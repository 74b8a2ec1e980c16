-- +goose NO TRANSACTION
-- Built and dropped CONCURRENTLY, outside a transaction, as 00003 (see there).

-- +goose Up
-- The rows that were ever not available when a relay read them: delayed
-- at enqueue, or scheduled for a retry (available_at > created_at). A
-- relay reads above a floor under which its shards hold no live row, and
-- must keep that floor below these rows, which its reads pass by; this
-- partial index finds the lowest of them without walking the table. Rows
-- enqueued for now never enter it: an insert pays only the test of the
-- condition. A relay checks that it exists and is valid (a failed
-- CONCURRENTLY build leaves it INVALID: drop it and migrate again), and
-- reads from the lowest id without it.
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_messages_deferred ON outbox_messages (id) WHERE available_at > created_at;

-- (shard, id) goes. Relays read above their floor on the primary key, and
-- every statement that names rows by id must use the primary key: with
-- statistics taken on an empty outbox (autovacuum's analyze usually finds
-- it so), the planner costed a full scan of (shard, id) for
-- "id IN (...)" at nothing and chose it, and under a held snapshot each
-- ack walked every dead entry of the index (57 ms for a 4-row delete
-- among 300,000 dead rows, against 0.2 ms on the primary key). One index
-- less is also one entry less for every enqueue and every ack.
DROP INDEX CONCURRENTLY IF EXISTS outbox_messages_shard_id;

-- +goose Down
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_messages_shard_id ON outbox_messages (shard, id);
DROP INDEX CONCURRENTLY IF EXISTS outbox_messages_deferred;
