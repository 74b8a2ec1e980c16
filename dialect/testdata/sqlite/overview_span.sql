-- Overview of a large outbox: the span of ids to sample
SELECT MIN(id), MAX(id)
FROM outbox_messages;
