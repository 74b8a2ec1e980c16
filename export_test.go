package outbox

import (
	"context"
	"time"
)

// SetClockReaderForTest makes r read the database clock with read, every
// every (for tests that stall it).
func SetClockReaderForTest(r *Relay, read func(context.Context) (time.Time, error), every time.Duration) {
	r.obs.readClock, r.obs.clockEvery = read, every
}
