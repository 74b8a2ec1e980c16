-- Renew (transaction): which ones were extended
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ shard, fence
FROM outbox_shards
WHERE (owner = ? AND (fence = ? AND shard = ? OR fence = ? AND shard = ?))
ORDER BY shard;
-- args: "relay-1" 41 3 2 9
