-- Release (transaction on MySQL): hand shards back
/*M! SET STATEMENT max_statement_time=30.000 FOR */ UPDATE outbox_shards
SET owner = ?, lease_until = ?
WHERE (owner = ? AND (fence = ? AND shard = ? OR fence = ? AND shard = ?));
-- args: <nil> <nil> "relay-1" 41 3 2 9
