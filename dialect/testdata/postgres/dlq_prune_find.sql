-- PruneDeadLetters: up to 1000 of the oldest dead for longer than 30 days
SELECT id
FROM outbox_dead_letters
WHERE dead_at < (now() + CAST($1 AS DOUBLE PRECISION) * INTERVAL '1 microsecond')
ORDER BY id
LIMIT 1000;
-- args: -2592000000000
