-- Overview: the most frequent errors of 1,000 of them
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ last_error, COUNT(*)
FROM (SELECT last_error FROM outbox_messages WHERE attempts > 0 LIMIT 1000) AS w
GROUP BY last_error
ORDER BY COUNT(*) DESC, last_error
LIMIT 5;
