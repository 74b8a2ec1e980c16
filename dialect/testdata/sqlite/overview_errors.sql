-- Overview: the most frequent errors of 1,000 of them
SELECT last_error, COUNT(*)
FROM (SELECT last_error FROM outbox_messages WHERE attempts > 0 LIMIT 1000) AS w
GROUP BY last_error
ORDER BY COUNT(*) DESC, last_error
LIMIT 5;
