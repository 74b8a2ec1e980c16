-- PruneDeadLetters: delete them, checking their age again
/*M! SET STATEMENT max_statement_time=30.000 FOR */ DELETE
FROM outbox_dead_letters
WHERE id IN (?,?) AND dead_at < (UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND);
-- args: 101 102 -2592000000000
