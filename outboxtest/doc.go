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
//   - FakePublisher is an in-memory outbox.Publisher for tests of code that
//     runs an outbox.Relay: it records what the relay published, in order,
//     injects failures (retriable, permanent, broker unavailable: FailNext,
//     FailTopic, SetHook), refuses records over a size limit
//     (SetMaxMessageBytes), holds calls in flight (Block, Unblock) and
//     lists breaches of the Publisher contract (Violations). It passes
//     publisher/publishertest's conformance suite, as publisher/kafka does.
//
//   - Its subpackages hold the helpers that need more than the standard
//     library, so that a test using only the fakes compiles no database
//     driver or broker: sqlitetest.New gives a real Outbox on a fresh,
//     migrated SQLite file, for tests about transactions (a message is
//     visible after the business change commits and absent after it rolls
//     back); kafkatest.New starts an in-process Kafka-protocol broker on a
//     loopback port for integration tests that run a Relay with the real
//     publisher/kafka; dbtest gives fresh, migrated databases of every
//     dialect on real PostgreSQL and MySQL servers.
//
// The assertion helpers take a TB, which *testing.T and *testing.B satisfy,
// and fail through its Fatalf. Their messages are prefixed with the package
// name and list what was recorded, so a failure shows what to fix.
package outboxtest
