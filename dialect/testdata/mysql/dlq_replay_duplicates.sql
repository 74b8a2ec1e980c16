-- ReplayDeadLetters (transaction): which have a newer dead letter of their message id?
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ dl.id, dl.message_id, MAX(n.id)
FROM outbox_dead_letters AS dl JOIN outbox_dead_letters AS n ON n.message_id = dl.message_id AND n.id > dl.id
WHERE dl.id IN (?,?)
GROUP BY dl.id, dl.message_id
ORDER BY dl.id;
-- args: 101 102
