-- ReplayDeadLetters (transaction): lock the dead letters that still exist
SELECT id
FROM outbox_dead_letters
WHERE id IN ($1,$2)
ORDER BY id
FOR UPDATE;
-- args: 101 102
