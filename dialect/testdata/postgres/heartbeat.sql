-- Heartbeat: this relay is alive
INSERT INTO outbox_relays (relay_id,heartbeat_at)
VALUES ($1,now())
ON CONFLICT (relay_id) DO UPDATE
SET heartbeat_at = excluded.heartbeat_at;
-- args: "relay-1"
