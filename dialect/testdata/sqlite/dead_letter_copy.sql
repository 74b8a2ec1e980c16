-- DeadLetter (transaction): copy them with their error
INSERT INTO outbox_dead_letters (message_id, topic, msg_key, key_hash, payload, headers, shard, created_at,attempts,last_error,dead_at)
SELECT message_id, topic, msg_key, key_hash, payload, headers, shard, created_at, attempts + 1, CASE id WHEN ? THEN ? WHEN ? THEN ? END, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)
FROM outbox_messages
WHERE id IN (?,?);
-- args: 101 "too large" 102 "invalid" 101 102
