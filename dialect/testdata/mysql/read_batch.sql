-- ReadBatch: the next rows in id order, leaving out a batch in flight (101-103, 107) and a waiting key
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ m.id, m.message_id, m.topic, m.msg_key, m.payload, m.headers, m.shard, m.attempts, m.created_at, m.key_hash
FROM outbox_messages m FORCE INDEX (PRIMARY)
WHERE m.shard IN (3,9) AND m.available_at <= UTC_TIMESTAMP(6) AND m.id NOT BETWEEN 101 AND 103 AND m.id NOT BETWEEN 107 AND 107 AND (m.key_hash IS NULL OR NOT ((m.shard = 3 AND m.key_hash = 1234567 AND m.id > 55)))
ORDER BY m.id
LIMIT 1000;
