-- +goose Up
-- relay prune (and relay run --prune-interval) finds the dead letters older
-- than an age through this index: a range scan from the oldest that stops
-- at once when none is old enough, instead of a walk of the whole table.
-- dlq list --since/--before use it too.
--
-- Online (LOCK=NONE: relays dead-letter while it builds; the statement
-- fails rather than lock the table if the server cannot build it online),
-- and only if the index is missing, so the file can run again. MySQL 8 has
-- no CREATE INDEX IF NOT EXISTS (MariaDB has), hence the statement chosen
-- from information_schema.
SET @outbox_ddl = (SELECT IF(COUNT(*) = 0,
    'CREATE INDEX outbox_dead_letters_dead_at ON outbox_dead_letters (dead_at) ALGORITHM=INPLACE LOCK=NONE',
    'DO 0')
  FROM information_schema.statistics
  WHERE table_schema = DATABASE() AND table_name = 'outbox_dead_letters' AND index_name = 'outbox_dead_letters_dead_at');
PREPARE outbox_ddl FROM @outbox_ddl;
EXECUTE outbox_ddl;
DEALLOCATE PREPARE outbox_ddl;

-- +goose Down
SET @outbox_ddl = (SELECT IF(COUNT(*) > 0,
    'DROP INDEX outbox_dead_letters_dead_at ON outbox_dead_letters',
    'DO 0')
  FROM information_schema.statistics
  WHERE table_schema = DATABASE() AND table_name = 'outbox_dead_letters' AND index_name = 'outbox_dead_letters_dead_at');
PREPARE outbox_ddl FROM @outbox_ddl;
EXECUTE outbox_ddl;
DEALLOCATE PREPARE outbox_ddl;
