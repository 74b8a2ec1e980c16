-- ReadBatch, the second look after the batch: every waiting key
SELECT shard, key_hash, MIN(id)
FROM outbox_messages
WHERE attempts > 0 AND available_at > CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) AND key_hash IS NOT NULL AND shard IN (3,9)
GROUP BY shard, key_hash;
