-- Enqueue: one multi-row INSERT (a keyed message, and a keyless one delayed by 1.5 s)
INSERT INTO outbox_messages (message_id, topic, msg_key, key_hash, payload, headers, shard, created_at, available_at)
VALUES (E'0190b6d1-5b1a-7000-8000-000000000001',E'orders',E'\\x6f726465722d31'::bytea,1234567,E'\\x7b2269742773223a317d'::bytea,E'\\x0101026374'::bytea,7,now(),now()),(E'a''b\\c',E'orders.v2',NULL,NULL,NULL,NULL,3,now(),(now() + CAST(1500000 AS DOUBLE PRECISION) * INTERVAL '1 microsecond'));
