-- EnsureShards: do the shard rows exist?
SELECT COUNT(*)
FROM outbox_shards
WHERE shard < $1;
-- args: 64
