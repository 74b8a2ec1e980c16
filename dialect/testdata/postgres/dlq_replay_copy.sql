-- ReplayDeadLetters (transaction): copy them into the outbox
INSERT INTO outbox_messages (message_id, topic, msg_key, key_hash, payload, headers, shard, created_at, available_at, attempts)
SELECT message_id, topic, msg_key, key_hash, payload, headers, shard, now(), now(), 0
FROM outbox_dead_letters
WHERE id IN ($1,$2)
ORDER BY id;
-- args: 101 102
