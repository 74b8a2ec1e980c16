-- DeadLetterIDs: the ids of some dead letters that still exist
SELECT id
FROM outbox_dead_letters
WHERE id IN (?,?)
ORDER BY id DESC;
-- args: 101 102
