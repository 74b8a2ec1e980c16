-- ReplayDeadLetters (transaction), DeleteDeadLetters: delete them
/*M! SET STATEMENT max_statement_time=30.000 FOR */ DELETE
FROM outbox_dead_letters
WHERE id IN (?,?);
-- args: 101 102
