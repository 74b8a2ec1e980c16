-- DeadLetterIDs: the ids of some dead letters that still exist
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ id
FROM outbox_dead_letters
WHERE id IN (?,?)
ORDER BY id DESC;
-- args: 101 102
