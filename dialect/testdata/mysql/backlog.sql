-- ReadBacklog (prommetrics gauges): pending and dead letters counted up to 100000, the oldest due message among the first 10000 due rows by id (delayed and retrying rows skipped)
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ (SELECT COUNT(*) FROM (SELECT 1 AS x FROM outbox_messages LIMIT 100000) p), (SELECT MIN(o.created_at) FROM (SELECT created_at FROM outbox_messages WHERE available_at <= UTC_TIMESTAMP(6) ORDER BY id LIMIT 10000) o), (SELECT COUNT(*) FROM (SELECT 1 AS x FROM outbox_dead_letters LIMIT 100000) d), UTC_TIMESTAMP(6);
