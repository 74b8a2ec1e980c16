-- Acquire (transaction): take the locked shards
/*M! SET STATEMENT max_statement_time=30.000 FOR */ UPDATE outbox_shards
SET owner = ?, lease_until = (UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND), fence = fence + 1
WHERE shard IN (?,?);
-- args: "relay-1" 15000000 3 9
