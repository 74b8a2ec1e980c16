package admin

import (
	"context"
	"time"

	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/ctxtime"
)

// Retries of a chunk that met transient contention.
const (
	chunkAttempts = 5
	chunkBackoff  = 20 * time.Millisecond // doubles
)

// retry runs fn, one short transaction, again while it fails with
// transient contention (a deadlock victim, a serialization failure,
// SQLite busy: dialect.IsContention) or a unique violation (a replayed
// message id enqueued again meanwhile: the next run refuses it), at most
// chunkAttempts times in all. The transaction rolled back, so running it
// again is safe.
func (a *Admin) retry(ctx context.Context, fn func() error) error {
	wait := chunkBackoff
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == chunkAttempts || !(dialect.IsContention(err) || dialect.IsUniqueViolation(err)) {
			return err
		}
		if !ctxtime.Sleep(ctx, wait) {
			return err
		}
		wait *= 2
	}
}
