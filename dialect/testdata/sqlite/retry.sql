-- Retry: count an attempt and schedule the next
UPDATE outbox_messages AS m
SET attempts = m.attempts + 1, available_at = CASE m.id WHEN ? THEN (CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) + ?) WHEN ? THEN (CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) + ?) END, last_error = CASE m.id WHEN ? THEN ? WHEN ? THEN ? END
WHERE m.id IN (101,102);
-- args: 101 1000000 102 2000000 101 "broker said no" 102 "it's late"
