package outbox

import (
	"testing"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

// Reporting a published record (the hot path) allocates nothing, with an
// observer or without. (A failure's report costs what IsPermanent costs,
// which the relay pays for the failure anyway.)
func TestRecordEventAllocatesNothing(t *testing.T) {
	recs := []dialect.Row{{RowID: 1, MessageID: "m", Topic: "t", Shard: 3, CreatedAt: time.Now()}}
	for _, obs := range []RelayObserver{nil, NopObserver{}} {
		r := &Relay{obs: observing{obs: obs}}
		r.obs.clock.set(time.Millisecond)
		b := &batchRun{r: r, recs: recs}
		errs := []error{nil}
		allocs := testing.AllocsPerRun(100, func() {
			r.publishEvent(errs, time.Millisecond, false)
			b.recordEvent(0, OutcomePublished, FailureNone, "")
		})
		if allocs != 0 {
			t.Errorf("observer %T: %v allocations per record, want 0", obs, allocs)
		}
	}
}
