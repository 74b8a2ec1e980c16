// Package kafka is the Kafka implementation of outbox.Publisher, built on
// github.com/IBM/sarama's client.
//
// A Publisher is an idempotent producer (acks from all in-sync replicas) of
// its own: Sarama's Client keeps the connections, metadata, TLS and SASL,
// and the publisher builds, numbers and sends the record batches. It is an
// outbox.OrderedPublisher: the relay hands it a whole batch, many records of
// a key included, and Publish sends each partition's records in record
// batches of up to MaxMessageBytes, one batch in flight per partition, in
// call order. A batch that fails for good stops its partition for the call
// (the later records fail with outbox.ErrNotSent, unsent), so a record is
// never appended after an earlier record of its key that was not. A hot
// key costs one round trip per batch, not one per record. docs/design.md
// ("Kafka publisher") gives the whole argument.
//
// Every record is sent with its headers, in order, followed by the header
// outbox-id = Record.MessageID. A nil Key is sent as no key and a nil Value as a
// null value (a tombstone); empty ones stay empty.
//
// Failures are classified for the relay (see Classify):
//
//   - permanent (outbox.IsPermanent): the broker will never take the
//     record: larger than MaxMessageBytes or the broker's limit, an invalid
//     record or topic, writing to the topic not authorized. When the broker
//     rejects a whole batch for such a reason, its records are sent again
//     one per batch first, so only the culprit is marked permanent.
//   - unavailable (wraps outbox.ErrUnavailable): the cluster cannot be
//     reached or has no leader or not enough replicas, after RetryMax
//     retries. The relay leaves such messages untouched and backs off,
//     probing the brokers (Probe) to resume as soon as they answer.
//   - a topic that does not exist: ErrUnknownTopic, naming it; the relay
//     retries it with backoff, the other topics flow.
//   - anything else is returned as is; the relay retries it with backoff.
//
// Keys are spread over partitions by Sarama's FNV-1a hash partitioner by
// default; Partitioner "murmur2" puts them where the Java client (and so
// Kafka Connect and Debezium) would.
package kafka
