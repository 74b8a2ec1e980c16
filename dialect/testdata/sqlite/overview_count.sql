-- Overview: count the outbox, reading at most 100,001 rows
SELECT COUNT(*)
FROM (SELECT 1 FROM outbox_messages LIMIT 100001) AS b;
