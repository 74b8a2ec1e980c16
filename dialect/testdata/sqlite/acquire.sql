-- Acquire: take up to 5 free or expired shards
UPDATE outbox_shards
SET owner = ?, lease_until = (CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) + ?), fence = fence + 1
WHERE shard IN (SELECT shard FROM outbox_shards WHERE (owner IS NULL OR lease_until < CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)) ORDER BY shard LIMIT 5)
RETURNING shard, fence;
-- args: "relay-1" 15000000
