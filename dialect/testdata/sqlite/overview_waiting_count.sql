-- Overview: messages waiting for a retry
SELECT COUNT(*)
FROM outbox_messages
WHERE attempts > 0;
