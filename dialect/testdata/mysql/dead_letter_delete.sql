-- DeadLetter (transaction): delete them
DELETE
FROM outbox_messages
WHERE id IN (?,?);
-- args: 101 102
