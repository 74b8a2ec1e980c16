-- ReplayDeadLetters (transaction): is a message id pending again?
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ dl.id, dl.message_id
FROM outbox_dead_letters AS dl JOIN outbox_messages AS m ON m.message_id = dl.message_id
WHERE dl.id IN (?,?)
ORDER BY dl.id;
-- args: 101 102
