-- DeadLetter (transaction): delete them
DELETE
FROM outbox_messages
WHERE id IN ($1,$2);
-- args: 101 102
