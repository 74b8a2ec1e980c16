-- Overview: count the outbox, reading at most 100,001 rows
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ COUNT(*)
FROM (SELECT 1 FROM outbox_messages LIMIT 100001) AS b;
