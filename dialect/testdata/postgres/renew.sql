-- Renew: extend the leases still held with their fence
UPDATE outbox_shards
SET lease_until = (now() + CAST($1 AS DOUBLE PRECISION) * INTERVAL '1 microsecond')
WHERE (owner = $2 AND (fence = $3 AND shard = $4 OR fence = $5 AND shard = $6))
RETURNING shard, fence;
-- args: 15000000 "relay-1" 41 3 2 9
