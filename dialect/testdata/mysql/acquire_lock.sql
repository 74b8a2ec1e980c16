-- Acquire (transaction): lock up to 5 free or expired shards
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ shard
FROM outbox_shards
WHERE (owner IS NULL OR lease_until < UTC_TIMESTAMP(6))
ORDER BY shard
LIMIT 5
FOR UPDATE SKIP LOCKED;
