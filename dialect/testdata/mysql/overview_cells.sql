-- Overview of a small outbox: pending per topic and shard
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ topic, shard, COUNT(*), MIN(created_at)
FROM outbox_messages
GROUP BY topic, shard;
