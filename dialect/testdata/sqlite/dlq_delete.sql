-- ReplayDeadLetters (transaction), DeleteDeadLetters: delete them
DELETE
FROM outbox_dead_letters
WHERE id IN (?,?);
-- args: 101 102
