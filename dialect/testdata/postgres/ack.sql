-- Ack: delete published rows
DELETE
FROM outbox_messages
WHERE id IN (101,102,103);
