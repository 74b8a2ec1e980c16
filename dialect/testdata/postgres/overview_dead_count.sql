-- Overview: dead letters, reading at most 10,001
SELECT COUNT(*)
FROM (SELECT 1 FROM outbox_dead_letters LIMIT 10001) AS b;
