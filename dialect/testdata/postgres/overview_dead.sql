-- Overview: dead letters per topic
SELECT topic, COUNT(*), MAX(dead_at)
FROM outbox_dead_letters
GROUP BY topic
ORDER BY topic;
