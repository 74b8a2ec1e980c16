-- ReadBatch, the second look after the batch: every waiting key
SELECT shard, key_hash, MIN(id)
FROM outbox_messages
WHERE attempts > 0 AND available_at > UTC_TIMESTAMP(6) AND key_hash IS NOT NULL AND shard IN (3,9)
GROUP BY shard, key_hash;
