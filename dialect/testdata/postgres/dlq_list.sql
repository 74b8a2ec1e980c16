-- ListDeadLetters: every filter, newest first
SELECT id, message_id, topic, msg_key, payload, headers, shard, attempts, last_error, created_at, dead_at
FROM outbox_dead_letters
WHERE topic = $1 AND dead_at >= $2 AND dead_at < $3 AND strpos(last_error, $4) > 0 AND id < $5
ORDER BY id DESC
LIMIT 50;
-- args: "orders" 2026-12-01 00:00:00 +0000 UTC 2026-12-02 00:00:00 +0000 UTC "too large" 500
