// Package kafka is the Kafka implementation of outbox.Publisher, built on
// github.com/IBM/sarama.
//
// A Publisher holds one long-lived idempotent async producer (acks from
// all in-sync replicas, one request in flight per broker), so the records
// of a key keep their order across Sarama's own retries. Publish hands a
// whole batch to the producer at once and waits for the outcome of every
// record; the outcomes are routed back to the call through the messages'
// Metadata, so concurrent calls never mix their results.
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
//     rejects a whole batch for such a reason, each of its records is sent
//     again on its own first, so only the culprit is marked permanent.
//   - unavailable (wraps outbox.ErrUnavailable): the cluster cannot be
//     reached or has no leader or not enough replicas, after Sarama's
//     retries. The relay leaves such messages untouched and backs off.
//   - anything else is returned as is; the relay retries it with backoff.
//
// Keys are spread over partitions by Sarama's FNV-1a hash partitioner by
// default; Partitioner "murmur2" puts them where the Java client (and so
// Kafka Connect and Debezium) would.
package kafka
