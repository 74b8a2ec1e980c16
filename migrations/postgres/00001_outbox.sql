-- +goose Up
CREATE TABLE outbox_messages (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id   varchar(128) NOT NULL,
    topic        varchar(249) NOT NULL,
    msg_key      bytea,
    key_hash     bigint,
    payload      bytea,
    headers      bytea,
    shard        integer NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    available_at timestamptz NOT NULL DEFAULT now(),
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text,
    CONSTRAINT outbox_messages_message_id UNIQUE (message_id)
);
-- The relay reads a shard in id order.
CREATE INDEX outbox_messages_shard_id ON outbox_messages (shard, id);
-- "Is an earlier message of this key waiting for a retry?" probes this
-- small index only: rows that never failed are not in it.
CREATE INDEX outbox_messages_waiting ON outbox_messages (shard, key_hash, id) WHERE attempts > 0;

CREATE TABLE outbox_shards (
    shard       integer PRIMARY KEY,
    owner       varchar(255),
    lease_until timestamptz,
    fence       bigint NOT NULL DEFAULT 0
);

CREATE TABLE outbox_relays (
    relay_id     varchar(255) PRIMARY KEY,
    heartbeat_at timestamptz NOT NULL
);

CREATE TABLE outbox_dead_letters (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id varchar(128) NOT NULL,
    topic      varchar(249) NOT NULL,
    msg_key    bytea,
    key_hash   bigint,
    payload    bytea,
    headers    bytea,
    shard      integer NOT NULL,
    created_at timestamptz NOT NULL,
    attempts   integer NOT NULL,
    last_error text,
    dead_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_dead_letters_message_id ON outbox_dead_letters (message_id);

-- Wake listening relays when outbox rows commit. NOTIFY is transactional:
-- it is delivered at commit and dropped on rollback. The payload is the
-- schema, so relays of other schemas can ignore it.
-- +goose StatementBegin
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_messages', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER outbox_messages_notify AFTER INSERT ON outbox_messages
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- +goose Down
DROP TRIGGER outbox_messages_notify ON outbox_messages;
DROP FUNCTION outbox_notify();
DROP TABLE outbox_dead_letters;
DROP TABLE outbox_relays;
DROP TABLE outbox_shards;
DROP TABLE outbox_messages;
