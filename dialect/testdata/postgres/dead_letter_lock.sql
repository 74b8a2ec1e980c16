-- DeadLetter (transaction): lock the rows that still exist
SELECT m.id
FROM outbox_messages AS m
WHERE m.id IN (101,102)
FOR UPDATE;
