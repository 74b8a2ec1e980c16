-- ReplayDeadLetters (transaction), DeleteDeadLetters: delete them
DELETE
FROM outbox_dead_letters
WHERE id IN ($1,$2);
-- args: 101 102
