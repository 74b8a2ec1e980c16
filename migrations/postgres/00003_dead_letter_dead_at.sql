-- +goose NO TRANSACTION
-- Built CONCURRENTLY, outside a transaction: a plain CREATE INDEX would hold
-- a SHARE lock on outbox_dead_letters while it builds, and every relay
-- dead-lettering a message would wait for it. IF NOT EXISTS makes it safe
-- to run again. A concurrent build that failed half-way leaves an INVALID
-- index of this name, which IF NOT EXISTS then keeps: drop it
-- (DROP INDEX CONCURRENTLY outbox_dead_letters_dead_at) and migrate again.

-- +goose Up
-- relay prune (and relay run --prune-interval) finds the dead letters older
-- than an age through this index: a range scan from the oldest that stops
-- at once when none is old enough, instead of a walk of the whole table.
-- dlq list --since/--before use it too.
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_dead_letters_dead_at ON outbox_dead_letters (dead_at);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS outbox_dead_letters_dead_at;
