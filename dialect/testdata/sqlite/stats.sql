-- Stats
SELECT COUNT(*), SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), SUM(CASE WHEN available_at > CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) THEN 1 ELSE 0 END), (CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) - MIN(created_at)), (SELECT COUNT(*) FROM outbox_dead_letters)
FROM outbox_messages;
