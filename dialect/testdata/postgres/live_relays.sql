-- Heartbeat: how many relays are alive
SELECT COUNT(*)
FROM outbox_relays;
