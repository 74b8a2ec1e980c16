-- DeadLetter (transaction): copy them with their error
INSERT INTO outbox_dead_letters (message_id, topic, msg_key, key_hash, payload, headers, shard, created_at,attempts,last_error,dead_at)
SELECT message_id, topic, msg_key, key_hash, payload, headers, shard, created_at, attempts + 1, CASE id WHEN $1 THEN $2 WHEN $3 THEN $4 END, now()
FROM outbox_messages
WHERE id IN ($5,$6);
-- args: 101 "too large" 102 "invalid" 101 102
