-- Deregister: the relay stops
DELETE
FROM outbox_relays
WHERE relay_id = ?;
-- args: "relay-1"
