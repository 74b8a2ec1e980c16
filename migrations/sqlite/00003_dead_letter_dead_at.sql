-- +goose Up
-- relay prune (and relay run --prune-interval) finds the dead letters older
-- than an age through this index: a range scan from the oldest that stops
-- at once when none is old enough, instead of a walk of the whole table.
-- dlq list --since/--before use it too.
CREATE INDEX IF NOT EXISTS outbox_dead_letters_dead_at ON outbox_dead_letters (dead_at);

-- +goose Down
DROP INDEX IF EXISTS outbox_dead_letters_dead_at;
