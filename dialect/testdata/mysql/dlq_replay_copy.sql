-- ReplayDeadLetters (transaction): copy them into the outbox
/*M! SET STATEMENT max_statement_time=30.000 FOR */ INSERT INTO outbox_messages (message_id, topic, msg_key, key_hash, payload, headers, shard, created_at, available_at, attempts)
SELECT message_id, topic, msg_key, key_hash, payload, headers, shard, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 0
FROM outbox_dead_letters
WHERE id IN (?,?)
ORDER BY id;
-- args: 101 102
