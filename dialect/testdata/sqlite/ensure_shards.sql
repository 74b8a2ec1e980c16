-- EnsureShards: create the missing ones (3 here)
INSERT OR IGNORE INTO outbox_shards (shard,fence)
VALUES (?,?),(?,?),(?,?);
-- args: 0 0 1 0 2 0
