-- Renew (transaction): extend the leases still held with their fence
/*M! SET STATEMENT max_statement_time=30.000 FOR */ UPDATE outbox_shards
SET lease_until = (UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND)
WHERE (owner = ? AND (fence = ? AND shard = ? OR fence = ? AND shard = ?));
-- args: 15000000 "relay-1" 41 3 2 9
