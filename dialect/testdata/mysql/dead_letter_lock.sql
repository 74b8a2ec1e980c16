-- DeadLetter (transaction): lock the rows that still exist
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ m.id
FROM JSON_TABLE('[101,102]', '$[*]' COLUMNS (id BIGINT PATH '$')) AS x STRAIGHT_JOIN outbox_messages AS m FORCE INDEX (PRIMARY) ON m.id = x.id
FOR UPDATE;
