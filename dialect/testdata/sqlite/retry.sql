-- Retry: count an attempt and schedule the next
UPDATE outbox_messages
SET attempts = attempts + 1, available_at = CASE id WHEN ? THEN (CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) + ?) WHEN ? THEN (CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) + ?) END, last_error = CASE id WHEN ? THEN ? WHEN ? THEN ? END
WHERE id IN (?,?);
-- args: 101 1000000 102 2000000 101 "broker said no" 102 "it's late" 101 102
