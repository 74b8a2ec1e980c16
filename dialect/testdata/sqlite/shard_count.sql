-- EnsureShards: do the shard rows exist?
SELECT COUNT(*)
FROM outbox_shards
WHERE shard < ?;
-- args: 64
