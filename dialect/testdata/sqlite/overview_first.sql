-- Overview: the first message in line
SELECT created_at
FROM outbox_messages
ORDER BY id
LIMIT 1;
