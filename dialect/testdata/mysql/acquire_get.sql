-- Acquire (transaction): their new fences
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ shard, fence
FROM outbox_shards
WHERE shard IN (?,?)
ORDER BY shard;
-- args: 3 9
