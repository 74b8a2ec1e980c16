-- Overview of a large outbox: pending per topic and shard in 3 ranges of ids (100 in real life)
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ topic, shard, COUNT(*), MIN(created_at)
FROM outbox_messages
WHERE ((id >= ? AND id < ?) OR (id >= ? AND id < ?) OR (id >= ? AND id < ?))
GROUP BY topic, shard;
-- args: 1 1001 3000001 3001001 6000001 6001001
