-- Release (transaction on MySQL): hand shards back
UPDATE outbox_shards
SET owner = ?, lease_until = ?
WHERE (owner = ? AND (fence = ? AND shard = ? OR fence = ? AND shard = ?));
-- args: <nil> <nil> "relay-1" 41 3 2 9
