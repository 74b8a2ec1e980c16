-- MaxPendingShard: the relay's check of the application's shard count
SELECT MAX(shard)
FROM outbox_messages;
