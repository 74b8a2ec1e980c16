-- ReadBatch, the second look after the batch: every waiting key
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ shard, key_hash, MIN(id)
FROM outbox_messages
WHERE attempts > 0 AND available_at > UTC_TIMESTAMP(6) AND key_hash IS NOT NULL AND shard IN (3,9)
GROUP BY shard, key_hash;
