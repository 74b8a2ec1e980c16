-- Replay, Purge: the next chunk of a selection, oldest first
SELECT id
FROM outbox_dead_letters
WHERE topic = $1 AND id > $2 AND id <= $3
ORDER BY id
LIMIT 500;
-- args: "orders" 1000 5000
