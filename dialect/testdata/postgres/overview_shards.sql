-- Overview: each shard's lease and first message in line
SELECT s.shard, s.owner, s.lease_until, (SELECT m.created_at FROM outbox_messages AS m WHERE m.shard = s.shard ORDER BY m.id LIMIT 1)
FROM outbox_shards AS s
ORDER BY s.shard;
