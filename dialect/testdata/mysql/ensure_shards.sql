-- EnsureShards: create the missing ones (3 here)
/*M! SET STATEMENT max_statement_time=30.000 FOR */ INSERT IGNORE INTO outbox_shards (shard,fence)
VALUES (?,?),(?,?),(?,?);
-- args: 0 0 1 0 2 0
