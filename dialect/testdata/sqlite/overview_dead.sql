-- Overview: the newest 10,000 dead letters per topic
SELECT topic, COUNT(*), MAX(dead_at)
FROM (SELECT topic, dead_at FROM outbox_dead_letters ORDER BY id DESC LIMIT 10000) AS dl
GROUP BY topic
ORDER BY topic;
