-- Stats
SELECT COUNT(*), SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), SUM(CASE WHEN available_at > now() THEN 1 ELSE 0 END), EXTRACT(EPOCH FROM (now() - MIN(created_at))) * 1000000, (SELECT COUNT(*) FROM outbox_dead_letters)
FROM outbox_messages;
