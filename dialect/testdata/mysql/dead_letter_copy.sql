-- DeadLetter (transaction): copy them with their error
/*M! SET STATEMENT max_statement_time=30.000 FOR */ INSERT INTO outbox_dead_letters (message_id, topic, msg_key, key_hash, payload, headers, shard, created_at,attempts,last_error,dead_at)
SELECT m.message_id, m.topic, m.msg_key, m.key_hash, m.payload, m.headers, m.shard, m.created_at, m.attempts + 1, CASE m.id WHEN ? THEN ? WHEN ? THEN ? END, UTC_TIMESTAMP(6)
FROM JSON_TABLE('[101,102]', '$[*]' COLUMNS (id BIGINT PATH '$')) AS x STRAIGHT_JOIN outbox_messages AS m FORCE INDEX (PRIMARY) ON m.id = x.id;
-- args: 101 "too large" 102 "invalid"
