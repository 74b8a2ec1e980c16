-- Overview: dead letters, reading at most 10,001
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ COUNT(*)
FROM (SELECT 1 FROM outbox_dead_letters LIMIT 10001) AS b;
