-- Heartbeat (transaction on MySQL): forget relays silent for longer than the lease (15 s)
DELETE
FROM outbox_relays
WHERE heartbeat_at < (now() + CAST($1 AS DOUBLE PRECISION) * INTERVAL '1 microsecond');
-- args: -15000000
