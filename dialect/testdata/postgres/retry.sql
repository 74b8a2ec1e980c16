-- Retry: count an attempt and schedule the next
UPDATE outbox_messages AS m
SET attempts = m.attempts + 1, available_at = CASE m.id WHEN $1 THEN (now() + CAST($2 AS DOUBLE PRECISION) * INTERVAL '1 microsecond') WHEN $3 THEN (now() + CAST($4 AS DOUBLE PRECISION) * INTERVAL '1 microsecond') END, last_error = CASE m.id WHEN $5 THEN $6 WHEN $7 THEN $8 END
WHERE m.id IN (101,102);
-- args: 101 1000000 102 2000000 101 "broker said no" 102 "it's late"
