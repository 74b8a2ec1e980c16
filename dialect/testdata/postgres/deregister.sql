-- Deregister: the relay stops
DELETE
FROM outbox_relays
WHERE relay_id = $1;
-- args: "relay-1"
