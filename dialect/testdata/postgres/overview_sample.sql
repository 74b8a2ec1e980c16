-- Overview of a large outbox: pending per topic and shard in 3 ranges of ids (100 in real life)
SELECT topic, shard, COUNT(*), MIN(created_at)
FROM (SELECT topic, shard, created_at FROM outbox_messages WHERE id >= 1 AND id < 1001 UNION ALL SELECT topic, shard, created_at FROM outbox_messages WHERE id >= 3000001 AND id < 3001001 UNION ALL SELECT topic, shard, created_at FROM outbox_messages WHERE id >= 6000001 AND id < 6001001) AS sample
GROUP BY topic, shard;
