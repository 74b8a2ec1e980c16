-- Renew: extend the leases still held with their fence
UPDATE outbox_shards
SET lease_until = (CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) + ?)
WHERE (owner = ? AND (fence = ? AND shard = ? OR fence = ? AND shard = ?))
RETURNING shard, fence;
-- args: 15000000 "relay-1" 41 3 2 9
