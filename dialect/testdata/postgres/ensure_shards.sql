-- EnsureShards: create the missing ones (3 here)
INSERT INTO outbox_shards (shard,fence)
VALUES ($1,$2),($3,$4),($5,$6)
ON CONFLICT (shard) DO NOTHING;
-- args: 0 0 1 0 2 0
