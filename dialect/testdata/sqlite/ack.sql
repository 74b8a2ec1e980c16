-- Ack: delete published rows
DELETE
FROM outbox_messages AS m
WHERE m.id IN (101,102,103);
