-- Overview: the database clock
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ UTC_TIMESTAMP(6);
