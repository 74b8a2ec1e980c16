-- Overview: a sample of them, next attempt first
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ id, message_id, topic, shard, attempts, available_at, last_error
FROM outbox_messages
WHERE attempts > 0
ORDER BY available_at, id
LIMIT 10;
