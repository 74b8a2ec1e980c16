-- Overview: the first message in line
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ created_at
FROM outbox_messages
ORDER BY id
LIMIT 1;
