-- Acquire: take up to 5 free or expired shards
UPDATE outbox_shards
SET owner = $1, lease_until = (now() + CAST($2 AS DOUBLE PRECISION) * INTERVAL '1 microsecond'), fence = fence + 1
WHERE shard IN (SELECT shard FROM outbox_shards WHERE (owner IS NULL OR lease_until < now()) ORDER BY shard LIMIT 5 FOR UPDATE SKIP LOCKED)
RETURNING shard, fence;
-- args: "relay-1" 15000000
