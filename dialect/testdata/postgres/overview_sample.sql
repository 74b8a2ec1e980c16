-- Overview of a large outbox: pending per topic and shard in 3 ranges of ids (100 in real life)
SELECT topic, shard, COUNT(*), MIN(created_at)
FROM outbox_messages
WHERE ((id >= $1 AND id < $2) OR (id >= $3 AND id < $4) OR (id >= $5 AND id < $6))
GROUP BY topic, shard;
-- args: 1 1001 3000001 3001001 6000001 6001001
