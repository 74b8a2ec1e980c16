-- DeadLetter (transaction): delete them
DELETE
FROM outbox_messages AS m
WHERE m.id IN (101,102);
