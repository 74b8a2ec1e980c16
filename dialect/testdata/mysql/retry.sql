-- Retry: count an attempt and schedule the next
/*M! SET STATEMENT max_statement_time=30.000 FOR */ UPDATE JSON_TABLE('[101,102]', '$[*]' COLUMNS (id BIGINT PATH '$')) AS x STRAIGHT_JOIN outbox_messages AS m FORCE INDEX (PRIMARY) ON m.id = x.id
SET attempts = m.attempts + 1, available_at = CASE m.id WHEN ? THEN (UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND) WHEN ? THEN (UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND) END, last_error = CASE m.id WHEN ? THEN ? WHEN ? THEN ? END;
-- args: 101 1000000 102 2000000 101 "broker said no" 102 "it's late"
