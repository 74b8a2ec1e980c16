package outbox

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/outboxrelay/outbox/internal/ctxtime"
)

// settle records the outcome of a batch. Acks come first: a lost ack means a
// duplicate, never a loss. It returns the ids it could not delete, which the
// worker retries before reading again.
func (r *Relay) settle(work context.Context, out batchOutcome) (unacked []int64) {
	// The batch's writes get their own deadline, so a finished publish is
	// not thrown away for want of a DELETE; once the shutdown timeout is over
	// (work ends) they get two more seconds.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(work), outcomeTimeout)
	defer cancel()
	stop := context.AfterFunc(work, func() { time.AfterFunc(2*time.Second, cancel) })
	defer stop()
	d := r.cfg.Dialect
	start := time.Now()
	var failed error
	defer func() { r.settleEvent(out, time.Since(start), failed) }()
	try := func(what string, fn func() error) bool {
		for attempt := 1; ; attempt++ {
			err := fn()
			if err == nil {
				return true
			}
			if attempt == 3 || dctx.Err() != nil {
				r.log.Error("recording the batch outcome failed", "step", what, "err", err)
				failed = cmp.Or(failed, fmt.Errorf("%s: %w", what, err))
				return false
			}
			ctxtime.Sleep(dctx, time.Duration(attempt)*100*time.Millisecond)
		}
	}
	if len(out.acks) > 0 {
		if try("ack", func() error { _, err := d.Ack(dctx, r.db, out.acks); return err }) {
			r.published.Add(int64(len(out.acks)))
		} else {
			unacked = out.acks
		}
	}
	if len(out.failures) > 0 && try("dead-letter", func() error { return d.DeadLetter(dctx, r.db, out.failures) }) {
		r.deadLettered.Add(int64(len(out.failures)))
	}
	if len(out.retries) > 0 && try("retry", func() error { return d.Retry(dctx, r.db, out.retries) }) {
		r.retried.Add(int64(len(out.retries)))
	}
	return unacked
}

// backoff is the wait before attempt n+1: RetryBackoff * 2^(n-1), capped at
// RetryBackoffMax, minus up to a fifth of jitter so that failed messages
// spread out.
func (r *Relay) backoff(n int) time.Duration {
	d := r.cfg.RetryBackoff
	for i := 1; i < n && d < r.cfg.RetryBackoffMax; i++ {
		d *= 2
	}
	d = min(d, r.cfg.RetryBackoffMax)
	if d > 0 {
		d -= time.Duration(rand.Int64N(int64(d)/5 + 1))
	}
	return d
}

// errText makes an error fit the last_error column: valid UTF-8, no NUL,
// at most 2000 bytes.
func errText(err error) string {
	s := strings.ToValidUTF8(err.Error(), "?")
	s = strings.ReplaceAll(s, "\x00", "?")
	if len(s) > 2000 {
		s = strings.ToValidUTF8(s[:2000], "")
	}
	return s
}

// retryAck deletes published rows whose ack failed, with a growing pause,
// before anything is read again.
func (r *Relay) retryAck(ctx, work context.Context) {
	wait := 500 * time.Millisecond
	for len(r.unacked) > 0 && ctx.Err() == nil {
		actx, cancel := context.WithTimeout(work, 30*time.Second)
		_, err := r.cfg.Dialect.Ack(actx, r.db, r.unacked)
		cancel()
		if err == nil {
			r.published.Add(int64(len(r.unacked)))
			r.unacked = nil
			return
		}
		r.log.Error("deleting published messages failed; retrying before reading more", "messages", len(r.unacked), "err", err, "retry_in", wait)
		r.backoffEvent(BackoffAckFailed, "", wait)
		ctxtime.Sleep(ctx, wait)
		wait = min(wait*2, 30*time.Second)
	}
}
