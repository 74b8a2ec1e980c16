-- ListDeadLetters: every filter, newest first
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ id, message_id, topic, msg_key, payload, headers, shard, attempts, last_error, created_at, dead_at
FROM outbox_dead_letters
WHERE topic = ? AND dead_at >= ? AND dead_at < ? AND LOCATE(?, last_error) > 0 AND id < ?
ORDER BY id DESC
LIMIT 50;
-- args: "orders" "2026-12-01 00:00:00" "2026-12-02 00:00:00" "too large" 500
