-- PruneDeadLetters: up to 1000 of the oldest dead for longer than 30 days
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ id
FROM outbox_dead_letters
WHERE dead_at < (UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND)
ORDER BY id
LIMIT 1000;
-- args: -2592000000000
