-- Overview of a small outbox: pending per topic and shard
SELECT topic, shard, COUNT(*), MIN(created_at)
FROM outbox_messages
GROUP BY topic, shard;
