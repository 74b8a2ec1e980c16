-- Heartbeat: this relay is alive
INSERT INTO outbox_relays (relay_id,heartbeat_at)
VALUES (?,CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
ON CONFLICT (relay_id) DO UPDATE
SET heartbeat_at = excluded.heartbeat_at;
-- args: "relay-1"
