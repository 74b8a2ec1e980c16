-- PruneDeadLetters: delete them, checking their age again
DELETE
FROM outbox_dead_letters
WHERE id IN (?,?) AND dead_at < (CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) + ?);
-- args: 101 102 -2592000000000
