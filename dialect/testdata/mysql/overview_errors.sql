-- Overview: their most frequent errors
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ last_error, COUNT(*)
FROM outbox_messages
WHERE attempts > 0
GROUP BY last_error
ORDER BY COUNT(*) DESC, last_error
LIMIT 5;
