-- Overview: each shard's lease and first message in line
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ s.shard, s.owner, s.lease_until, (SELECT m.created_at FROM outbox_messages AS m FORCE INDEX (outbox_messages_shard_id) WHERE m.shard = s.shard ORDER BY m.id LIMIT 1)
FROM outbox_shards AS s
ORDER BY s.shard;
