-- DeadLetter (transaction): lock the rows that still exist
SELECT id
FROM outbox_messages
WHERE id IN ($1,$2)
FOR UPDATE;
-- args: 101 102
