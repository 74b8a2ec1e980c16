-- ListDeadLetters: every filter, newest first
SELECT id, message_id, topic, msg_key, payload, headers, shard, attempts, last_error, created_at, dead_at
FROM outbox_dead_letters
WHERE topic = ? AND dead_at >= ? AND dead_at < ? AND instr(last_error, ?) > 0 AND id < ?
ORDER BY id DESC
LIMIT 50;
-- args: "orders" 1796083200000000 1796169600000000 "too large" 500
