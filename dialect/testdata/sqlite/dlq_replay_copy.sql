-- ReplayDeadLetters (transaction): copy them into the outbox
INSERT INTO outbox_messages (message_id, topic, msg_key, key_hash, payload, headers, shard, created_at, available_at, attempts)
SELECT message_id, topic, msg_key, key_hash, payload, headers, shard, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER), CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER), 0
FROM outbox_dead_letters
WHERE id IN (?,?)
ORDER BY id;
-- args: 101 102
