-- +goose Up
-- MySQL DDL is not transactional: IF NOT EXISTS lets a run that died half
-- way be run again. Times are UTC (UTC_TIMESTAMP(6)) whatever the session time zone.
CREATE TABLE IF NOT EXISTS outbox_messages (
    id           BIGINT NOT NULL AUTO_INCREMENT,
    message_id   VARBINARY(128) NOT NULL,
    topic        VARCHAR(249) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    msg_key      MEDIUMBLOB,
    key_hash     BIGINT,
    payload      LONGBLOB,
    headers      MEDIUMBLOB,
    shard        INT NOT NULL,
    created_at   DATETIME(6) NOT NULL,
    available_at DATETIME(6) NOT NULL,
    attempts     INT NOT NULL DEFAULT 0,
    last_error   TEXT,
    PRIMARY KEY (id),
    UNIQUE KEY outbox_messages_message_id (message_id),
    -- The relay reads a shard in id order.
    KEY outbox_messages_shard_id (shard, id),
    -- "Is an earlier message of this key waiting for a retry?" scans only
    -- the rows of the key with attempts > 0.
    KEY outbox_messages_waiting (shard, key_hash, attempts, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS outbox_shards (
    shard       INT NOT NULL,
    owner       VARCHAR(255),
    lease_until DATETIME(6),
    fence       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (shard)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS outbox_relays (
    relay_id     VARCHAR(255) NOT NULL,
    heartbeat_at DATETIME(6) NOT NULL,
    PRIMARY KEY (relay_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS outbox_dead_letters (
    id         BIGINT NOT NULL AUTO_INCREMENT,
    message_id VARBINARY(128) NOT NULL,
    topic      VARCHAR(249) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    msg_key    MEDIUMBLOB,
    key_hash   BIGINT,
    payload    LONGBLOB,
    headers    MEDIUMBLOB,
    shard      INT NOT NULL,
    created_at DATETIME(6) NOT NULL,
    attempts   INT NOT NULL,
    last_error TEXT,
    dead_at    DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    KEY outbox_dead_letters_message_id (message_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- +goose Down
DROP TABLE outbox_dead_letters;
DROP TABLE outbox_relays;
DROP TABLE outbox_shards;
DROP TABLE outbox_messages;
