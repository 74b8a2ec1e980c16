-- Enqueue above 4 MiB of payload: the values bound
INSERT INTO outbox_messages (message_id, topic, msg_key, key_hash, payload, headers, shard, created_at, available_at)
VALUES ($1,$2,$3,1234567,$4,$5,7,now(),now()),($6,$7,NULL,NULL,NULL,NULL,3,now(),(now() + CAST(1500000 AS DOUBLE PRECISION) * INTERVAL '1 microsecond'));
-- args: "0190b6d1-5b1a-7000-8000-000000000001" "orders" x'6f726465722d31' x'7b2269742773223a317d' x'0101026374' "a'b\\c" "orders.v2"
