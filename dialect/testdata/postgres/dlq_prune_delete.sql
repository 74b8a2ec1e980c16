-- PruneDeadLetters: delete them, checking their age again
DELETE
FROM outbox_dead_letters
WHERE id IN ($1,$2) AND dead_at < (now() + CAST($3 AS DOUBLE PRECISION) * INTERVAL '1 microsecond');
-- args: 101 102 -2592000000000
