-- Overview: the newest 10,000 dead letters per topic
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ topic, COUNT(*), MAX(dead_at)
FROM (SELECT topic, dead_at FROM outbox_dead_letters ORDER BY id DESC LIMIT 10000) AS dl
GROUP BY topic
ORDER BY topic;
