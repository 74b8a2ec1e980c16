-- Overview of a large outbox: the span of ids to sample
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ MIN(id), MAX(id)
FROM outbox_messages;
