-- Deregister: the relay stops
/*M! SET STATEMENT max_statement_time=30.000 FOR */ DELETE
FROM outbox_relays
WHERE relay_id = ?;
-- args: "relay-1"
