-- Overview: their most frequent errors
SELECT last_error, COUNT(*)
FROM outbox_messages
WHERE attempts > 0
GROUP BY last_error
ORDER BY COUNT(*) DESC, last_error
LIMIT 5;
