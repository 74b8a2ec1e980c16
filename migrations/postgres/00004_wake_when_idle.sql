-- +goose Up
-- Wake only relays that wait. NOTIFY serializes the commits of every
-- transaction that issues it (PostgreSQL takes one database-wide lock at
-- commit to append to the notification queue, and holds it through the
-- commit's WAL flush): with a notification per enqueuing transaction, 32
-- writers committed at about half the rate they did without. A relay that
-- finds the outbox empty arms outbox_wake (1) before it waits; the first
-- insert after that disarms it (0) and notifies; inserts while it is
-- disarmed do not notify: no relay sleeps, or one has been woken already.
-- A sequence is the flag because it is not transactional: setting it
-- leaves no dead row behind, however long another session holds a
-- snapshot. If the transaction that disarmed it rolls back, its
-- notification is dropped and the relays wake at their next poll instead
-- (PollInterval, 250ms by default).
--
-- outbox_wake_arm() returns true when it found the flag disarmed (or at
-- 2): a row may have been inserted since the last arming, and commit after
-- the relay's last read, so the relay reads once more, and waits for the
-- transactions then inserting, before it trusts a wait. False: nothing was
-- inserted since, and any insert from now on notifies.
--
-- The flag starts at 2, "always notify", as before this migration: relays
-- of earlier versions never arm it, and keep being woken by every commit
-- until the first relay of this version arms it (1). From then on, relays
-- of earlier versions still running (a rolling update) are woken by their
-- polls only.
CREATE SEQUENCE IF NOT EXISTS outbox_wake AS smallint MINVALUE 0 MAXVALUE 2 START WITH 2 NO CYCLE;
-- The trigger's WHEN reads the flag as the enqueuing role: every role may
-- read it (it says only whether a relay waits).
GRANT SELECT ON SEQUENCE outbox_wake TO PUBLIC;

-- The functions run as their owner (SECURITY DEFINER), so the roles that
-- enqueue and relay need no grant on the sequence; their search_path is
-- pg_catalog only. The trigger function, called only when the flag is not
-- disarmed, finds it in the schema of the table it fires on (without a
-- flag it notifies on every insert, as before), with function calls only.
-- The relays' arming function names the schema this migration ran in.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    flag regclass := to_regclass(quote_ident(TG_TABLE_SCHEMA) || '.outbox_wake');
BEGIN
    IF flag IS NULL THEN
        PERFORM pg_notify('outbox_messages', TG_TABLE_SCHEMA);
        RETURN NULL;
    END IF;
    -- NULL: never set since it was created at 2.
    CASE coalesce(pg_sequence_last_value(flag), 2)
    WHEN 1 THEN
        PERFORM setval(flag, 0);
        PERFORM pg_notify('outbox_messages', TG_TABLE_SCHEMA);
    WHEN 2 THEN
        PERFORM pg_notify('outbox_messages', TG_TABLE_SCHEMA);
    ELSE
    END CASE;
    RETURN NULL;
END
$body$;
-- +goose StatementEnd

-- +goose StatementBegin
DO $migration$
DECLARE
    wake text := quote_ident(current_schema()) || '.outbox_wake';
BEGIN
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION outbox_wake_arm() RETURNS boolean
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
        BEGIN
            IF coalesce(pg_sequence_last_value(%1$L), 2) = 1 THEN
                RETURN false;
            END IF;
            PERFORM setval(%1$L, 1);
            RETURN true;
        END
        $body$$f$, wake);
END
$migration$;
-- +goose StatementEnd

-- A disarmed flag (0) costs an insert one read of the sequence in the
-- trigger's WHEN, evaluated by the executor: no function call. (Calling the
-- PL/pgSQL function to find the flag disarmed cost a single-row enqueuing
-- transaction a fifth of its rate.) The sequence is named by its OID,
-- fixed here: it follows a renamed schema.
DROP TRIGGER outbox_messages_notify ON outbox_messages;
CREATE TRIGGER outbox_messages_notify AFTER INSERT ON outbox_messages
    FOR EACH STATEMENT WHEN (pg_sequence_last_value(CAST('outbox_wake' AS regclass)) IS DISTINCT FROM 0)
    EXECUTE FUNCTION outbox_notify();

-- +goose Down
DROP TRIGGER outbox_messages_notify ON outbox_messages;
CREATE TRIGGER outbox_messages_notify AFTER INSERT ON outbox_messages
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_messages', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;
-- +goose StatementEnd
DROP FUNCTION IF EXISTS outbox_wake_arm();
DROP SEQUENCE IF EXISTS outbox_wake;
