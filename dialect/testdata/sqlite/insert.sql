-- Enqueue: one multi-row INSERT (a keyed message, and a keyless one delayed by 1.5 s)
INSERT INTO outbox_messages (message_id, topic, msg_key, key_hash, payload, headers, shard, created_at, available_at)
VALUES (?,?,?,1234567,?,?,7,CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER),CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)),(?,?,NULL,NULL,NULL,NULL,3,CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER),(CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) + 1500000));
-- args: "0190b6d1-5b1a-7000-8000-000000000001" "orders" x'6f726465722d31' x'7b2269742773223a317d' x'0101026374' "a'b\\c" "orders.v2"
