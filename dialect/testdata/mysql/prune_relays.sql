-- Heartbeat: forget relays silent for longer than the lease (15 s)
DELETE
FROM outbox_relays
WHERE heartbeat_at < (UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND);
-- args: -15000000
