-- Overview: messages waiting for a retry
SELECT COUNT(*)
FROM (SELECT 1 FROM outbox_messages WHERE attempts > 0 LIMIT 10001) AS w;
