-- Overview: a sample of them, next attempt first
SELECT id, message_id, topic, shard, attempts, available_at, last_error
FROM outbox_messages
WHERE attempts > 0
ORDER BY available_at, id
LIMIT 10;
