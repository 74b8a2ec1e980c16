-- DeadLetter (transaction): copy them with their error
INSERT INTO outbox_dead_letters (message_id, topic, msg_key, key_hash, payload, headers, shard, created_at,attempts,last_error,dead_at)
SELECT m.message_id, m.topic, m.msg_key, m.key_hash, m.payload, m.headers, m.shard, m.created_at, m.attempts + 1, CASE m.id WHEN $1 THEN $2 WHEN $3 THEN $4 END, now()
FROM outbox_messages AS m
WHERE m.id IN (101,102);
-- args: 101 "too large" 102 "invalid"
