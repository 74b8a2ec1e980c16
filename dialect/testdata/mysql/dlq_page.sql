-- Replay, Purge: the next chunk of a selection, oldest first
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ id
FROM outbox_dead_letters
WHERE topic = ? AND id > ? AND id <= ?
ORDER BY id
LIMIT 500;
-- args: "orders" 1000 5000
