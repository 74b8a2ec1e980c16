-- Heartbeat: this relay is alive
/*M! SET STATEMENT max_statement_time=30.000 FOR */ INSERT INTO outbox_relays (relay_id,heartbeat_at)
VALUES (?,UTC_TIMESTAMP(6))
ON DUPLICATE KEY UPDATE heartbeat_at = UTC_TIMESTAMP(6);
-- args: "relay-1"
