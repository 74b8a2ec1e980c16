-- Heartbeat (transaction on MySQL): forget relays silent for longer than the lease (15 s)
DELETE
FROM outbox_relays
WHERE heartbeat_at < (CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) + ?);
-- args: -15000000
