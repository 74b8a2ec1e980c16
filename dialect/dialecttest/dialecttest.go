// Package dialecttest is the conformance suite of the outbox dialects: the
// definition of a correct dialect. Every dialect of this module passes it
// against a real server, and a new dialect is done when it passes too:
//
//	func TestConformance(t *testing.T) {
//		dialecttest.Run(t, dialecttest.Harness{
//			Dialect: mydialect.New(),
//			Open:    openFreshMigratedDB, // isolated per call, closed at cleanup
//		})
//	}
package dialecttest

import (
	"database/sql"
	"testing"

	"github.com/outboxrelay/outbox/dialect"
)

// Harness is what the suite needs from a dialect under test.
type Harness struct {
	// Dialect is the dialect under test.
	Dialect dialect.Dialect
	// Open returns a fresh database with the outbox migrations applied,
	// isolated from every other call and closed when tb ends.
	Open func(tb testing.TB) *sql.DB
}

// numShards is the shard count of the suite's databases.
const numShards = 8

type suite struct {
	Harness
}

// Run runs the whole suite, one subtest per property, in parallel, each on
// a database of its own. The properties live in files by concern: insert.go
// (transactions and round trips), read.go (what ReadBatch returns),
// retry.go, settle.go (ack and dead letters), lease.go (shards, leases,
// heartbeats), stats.go, admin.go (Overview and the dead-letter tools), concurrent.go (writers and claimers at once),
// late.go (late committers), horizon.go (what a read floor rests on) and abandon.go (abandoned statements);
// helpers.go holds what they share.
func Run(t *testing.T, h Harness) {
	s := suite{h}
	tests := []struct {
		name string
		fn   func(*testing.T, *sql.DB)
	}{
		{"RollbackLeavesNothing", s.rollbackLeavesNothing},
		{"CommitMakesVisible", s.commitMakesVisible},
		{"RoundTrip", s.roundTrip},
		{"DuplicateMessageID", s.duplicateMessageID},
		{"ShardIDOrder", s.shardIDOrder},
		{"DelayedDelivery", s.delayedDelivery},
		{"RetryHoldsBackItsKeyOnly", s.retryHoldsBackItsKeyOnly},
		{"RetryBecomesAvailable", s.retryBecomesAvailable},
		{"ManyWaitingKeys", s.manyWaitingKeys},
		{"ReadExcludes", s.readExcludes},
		{"ReadMaxBytes", s.readMaxBytes},
		{"ReadAfter", s.readAfter},
		{"SettleWaitsForOpenInserts", s.settleWaitsForOpenInserts},
		{"LowestDeferred", s.lowestDeferred},
		{"Ack", s.ack},
		{"DeadLetterMovesAtomically", s.deadLetter},
		{"DeadLetterRace", s.deadLetterRace},
		{"EnsureShards", s.ensureShards},
		{"ClaimersNeverShareAShard", s.claimersNeverShareAShard},
		{"ExpiredLeaseTakenOver", s.expiredLeaseTakenOver},
		{"Release", s.release},
		{"Heartbeat", s.heartbeat},
		{"Stats", s.stats},
		{"BacklogPastDelayedRows", s.backlogPastDelayedRows},
		{"OverviewExact", s.overviewExact},
		{"OverviewSampled", s.overviewSampled},
		{"OverviewCapped", s.overviewCapped},
		{"OverviewStepFails", s.overviewStepFails},
		{"OverviewStepFailsHalfway", s.overviewStepFailsHalfway},
		{"ListDeadLetters", s.listDeadLetters},
		{"ReplayDeadLetters", s.replayDeadLetters},
		{"ReplayPendingAgain", s.replayPendingAgain},
		{"ReplayDuplicates", s.replayDuplicates},
		{"ReplayRace", s.replayRace},
		{"PurgeAndPrune", s.purgeAndPrune},
		{"ConcurrentWritersAndClaimers", s.concurrent},
		{"LateCommitterBlocksNothing", s.lateCommitters},
		{"AbandonedStatementStops", s.abandonedStatementStops},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := h.Open(t)
			tc.fn(t, db)
		})
	}
}
