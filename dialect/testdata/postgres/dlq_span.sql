-- Replay, Purge: how many a filter selects, and their lowest and highest ids (the newest 50)
SELECT COUNT(*), MIN(id), MAX(id)
FROM (SELECT id FROM outbox_dead_letters WHERE topic = $1 ORDER BY id DESC LIMIT 50) AS sel;
-- args: "orders"
