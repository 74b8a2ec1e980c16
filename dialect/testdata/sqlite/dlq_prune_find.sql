-- PruneDeadLetters: up to 1000 of the oldest dead for longer than 30 days
SELECT id
FROM outbox_dead_letters
WHERE dead_at < (CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) + ?)
ORDER BY id
LIMIT 1000;
-- args: -2592000000000
