-- Overview: 10 of them, next attempt first, of 1,000 of them
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ id, message_id, topic, shard, attempts, available_at, last_error
FROM (SELECT id, message_id, topic, shard, attempts, available_at, last_error FROM outbox_messages WHERE attempts > 0 LIMIT 1000) AS w
ORDER BY available_at, id
LIMIT 10;
