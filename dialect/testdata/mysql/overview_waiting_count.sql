-- Overview: messages waiting for a retry
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ COUNT(*)
FROM outbox_messages
WHERE attempts > 0;
