-- Renew (transaction): which ones were extended
SELECT shard, fence
FROM outbox_shards
WHERE (owner = ? AND (fence = ? AND shard = ? OR fence = ? AND shard = ?))
ORDER BY shard;
-- args: "relay-1" 41 3 2 9
