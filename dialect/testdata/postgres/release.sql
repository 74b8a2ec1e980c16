-- Release (transaction on MySQL): hand shards back
UPDATE outbox_shards
SET owner = $1, lease_until = $2
WHERE (owner = $3 AND (fence = $4 AND shard = $5 OR fence = $6 AND shard = $7));
-- args: <nil> <nil> "relay-1" 41 3 2 9
