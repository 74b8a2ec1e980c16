-- Replay, Purge: the next chunk of a selection, oldest first
SELECT id
FROM outbox_dead_letters
WHERE topic = ? AND id > ? AND id <= ?
ORDER BY id
LIMIT 500;
-- args: "orders" 1000 5000
