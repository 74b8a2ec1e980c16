-- Stats
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ COUNT(*), SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), SUM(CASE WHEN available_at > UTC_TIMESTAMP(6) THEN 1 ELSE 0 END), TIMESTAMPDIFF(MICROSECOND, MIN(created_at), UTC_TIMESTAMP(6)), (SELECT COUNT(*) FROM outbox_dead_letters)
FROM outbox_messages;
