-- Overview: dead letters per topic
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ topic, COUNT(*), MAX(dead_at)
FROM outbox_dead_letters
GROUP BY topic
ORDER BY topic;
