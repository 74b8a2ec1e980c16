-- Acquire (transaction): their new fences
SELECT shard, fence
FROM outbox_shards
WHERE shard IN (?,?)
ORDER BY shard;
-- args: 3 9
