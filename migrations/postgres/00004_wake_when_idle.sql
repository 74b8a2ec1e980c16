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
-- outbox_wake_arm() returns true when it found the flag disarmed: a row
-- was inserted since the last arming, and may have committed after the
-- relay's last read, so the relay reads once more before it waits. False:
-- nothing was inserted since, and any insert from now on notifies.
--
-- Upgrade the relays before applying this migration: relays of earlier
-- versions never arm the flag, so they poll.
CREATE SEQUENCE IF NOT EXISTS outbox_wake AS smallint MINVALUE 0 MAXVALUE 1 START WITH 1 NO CYCLE;

-- The functions run as their owner (SECURITY DEFINER), so the roles that
-- enqueue and relay need no grant on the sequence; every name in them is
-- qualified with the schema this migration runs in, and their search_path
-- is pg_catalog only.
-- +goose StatementBegin
DO $migration$
DECLARE
    wake text := quote_ident(current_schema()) || '.outbox_wake';
BEGIN
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
        BEGIN
            IF (SELECT last_value FROM %1$s) = 1 THEN
                PERFORM setval(%2$L, 0);
                PERFORM pg_notify('outbox_messages', TG_TABLE_SCHEMA);
            END IF;
            RETURN NULL;
        END
        $body$$f$, wake, wake);
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION outbox_wake_arm() RETURNS boolean
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
        BEGIN
            IF (SELECT last_value FROM %1$s) = 1 THEN
                RETURN false;
            END IF;
            PERFORM setval(%2$L, 1);
            RETURN true;
        END
        $body$$f$, wake, wake);
END
$migration$;
-- +goose StatementEnd

-- +goose Down
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
