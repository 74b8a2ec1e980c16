-- Replay, Purge: how many a filter selects, and their lowest and highest ids (the newest 50)
/*M! SET STATEMENT max_statement_time=30.000 FOR */
SELECT /*+ MAX_EXECUTION_TIME(30000) */ COUNT(*), MIN(id), MAX(id)
FROM (SELECT id FROM outbox_dead_letters WHERE topic = ? ORDER BY id DESC LIMIT 50) AS sel;
-- args: "orders"
