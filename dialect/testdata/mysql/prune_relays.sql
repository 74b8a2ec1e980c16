-- Heartbeat (transaction on MySQL): forget relays silent for longer than the lease (15 s)
/*M! SET STATEMENT max_statement_time=30.000 FOR */ DELETE
FROM outbox_relays
WHERE heartbeat_at < (UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND);
-- args: -15000000
