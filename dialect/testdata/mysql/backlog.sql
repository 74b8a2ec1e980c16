-- ReadBacklog (prommetrics gauges): pending and dead letters counted up to 100000, the oldest due message among the first 10000 by id
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ (SELECT COUNT(*) FROM (SELECT 1 AS x FROM outbox_messages LIMIT 100000) p), (SELECT MIN(CASE WHEN o.available_at <= UTC_TIMESTAMP(6) THEN o.created_at END) FROM (SELECT created_at, available_at FROM outbox_messages ORDER BY id LIMIT 10000) o), (SELECT COUNT(*) FROM (SELECT 1 AS x FROM outbox_dead_letters LIMIT 100000) d), UTC_TIMESTAMP(6);
