-- Now: the database clock (the relay's clock offset, for the commit-to-publish delay)
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ UTC_TIMESTAMP(6);
