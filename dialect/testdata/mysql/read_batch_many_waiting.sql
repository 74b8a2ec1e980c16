-- ReadBatch with more than 64 waiting keys: a correlated sub-query holds them back
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ m.id, m.message_id, m.topic, m.msg_key, m.payload, m.headers, m.shard, m.attempts, m.created_at, m.key_hash
FROM outbox_messages m FORCE INDEX (PRIMARY)
WHERE m.shard IN (3,9) AND m.available_at <= UTC_TIMESTAMP(6) AND (m.key_hash IS NULL OR NOT EXISTS (SELECT 1 FROM outbox_messages w WHERE w.shard = m.shard AND w.key_hash = m.key_hash AND w.attempts > 0 AND w.id < m.id AND w.available_at > UTC_TIMESTAMP(6)))
ORDER BY m.id
LIMIT 1000;
