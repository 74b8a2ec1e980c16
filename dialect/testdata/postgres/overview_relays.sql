-- Overview: the relays' heartbeats
SELECT relay_id, heartbeat_at
FROM outbox_relays
ORDER BY relay_id;
