-- Retry: count an attempt and schedule the next
UPDATE outbox_messages
SET attempts = attempts + 1, available_at = CASE id WHEN ? THEN (UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND) WHEN ? THEN (UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND) END, last_error = CASE id WHEN ? THEN ? WHEN ? THEN ? END
WHERE id IN (?,?);
-- args: 101 1000000 102 2000000 101 "broker said no" 102 "it's late" 101 102
