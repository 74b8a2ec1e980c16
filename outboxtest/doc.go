// Package outboxtest helps applications test code that enqueues outbox
// messages, and code that runs a relay.
//
// Which helper to use:
//
//   - Recorder is an in-memory outbox.Enqueuer for unit tests. Make the code
//     under test depend on outbox.Enqueuer, hand it a *Recorder, and check
//     what it enqueued with RequireEnqueued, RequireNotEnqueued and
//     RequireEnqueuedCount. The Recorder validates messages exactly like
//     the real Outbox and returns the same errors, so a message it accepts
//     is one the Outbox accepts. It needs no database: pass NopExecer{} (or
//     any non-nil Execer) where the code expects a transaction. It records
//     at once and knows nothing about transactions: a message enqueued in
//     a transaction that later rolls back stays recorded, and a second
//     message with the same Message.ID is recorded too (the outbox table's
//     unique index would reject it).
//
//   - NewSQLite gives a test a real Outbox on a fresh, migrated SQLite
//     file. Use it when the test is about transactions: that a message is
//     visible after the business change commits and absent after it rolls
//     back, or that a duplicate Message.ID is rejected. SQLite.Messages reads
//     back what is pending in the outbox table.
//
//   - FakePublisher is an in-memory outbox.Publisher for tests of code that
//     runs an outbox.Relay: it records what the relay published, in order,
//     injects failures (retriable, permanent, broker unavailable: FailNext,
//     FailTopic, SetHook), refuses records over a size limit
//     (SetMaxMessageBytes), holds calls in flight (Block, Unblock) and
//     lists breaches of the Publisher contract (Violations). It passes
//     publisher/publishertest's conformance suite, as publisher/kafka does.
//
//   - NewKafka starts an in-process Kafka-protocol broker on a loopback
//     port, closed when the test ends, for integration tests that run a
//     Relay with the real publisher/kafka: point kafka.Config.Brokers at
//     Kafka.Brokers, then read what arrived with Kafka.Records. Every
//     record carries the header outbox-id (outbox.HeaderID), the message's
//     ID. Kafka.Cluster gives the underlying kfake cluster for fault
//     injection.
//
// The assertion helpers take a TB, which *testing.T and *testing.B satisfy,
// and fail through its Fatalf. Their messages are prefixed with the package
// name and list what was recorded, so a failure shows what to fix.
package outboxtest
