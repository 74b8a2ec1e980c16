package outbox

import (
	"context"
	"errors"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

// wakeArmer returns the dialect's WakeArmer when the relay is woken by
// notifications (cfg.Wake) and the dialect arms them; nil otherwise.
func wakeArmer(cfg RelayConfig) dialect.WakeArmer {
	if cfg.Wake == nil || !cfg.Dialect.SupportsNotify() {
		return nil
	}
	a, _ := cfg.Dialect.(dialect.WakeArmer)
	return a
}

// armWake asks the next committed insert to notify, before an idle wait of
// idle: the database notifies only while a relay waits, so busy writers do
// not serialize their commits on NOTIFY. It reports whether the caller
// should read once more before it waits.
//
// An arming that finds the flag disarmed means rows were inserted since the
// last one, without notifying; those committed are visible to a new read,
// but the transactions still inserting (the writers) may commit after it,
// and their commit will not notify. So the relay reads again, and until
// those writers have ended it does not trust a long wait: it waits at most
// unsureWait between reads. Before a wait longer than that it asks which
// transactions are inserting (a read of pg_locks, kept out of the short
// waits of a busy relay), and once they have ended it reads once more.
//
// A relay that cannot arm (a database migrated before the wake-up existed
// notifies on every insert anyway; one that is down fails the next read
// too) waits as it would have: woken by a notification if one comes, else
// at its next poll. When the arming function does not exist it does not
// try again for armRetry.
func (r *Relay) armWake(ctx context.Context, idle time.Duration) (readAgain bool) {
	if r.arm == nil || time.Now().Before(r.armAfter) {
		return false
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	w := &r.wake
	if w.unsure && w.known {
		ended, err := r.arm.WritersEnded(actx, r.db, w.writers)
		if err == nil && ended {
			w.unsure, w.known = false, false
			readAgain = true
		}
	}
	disarmed, err := r.arm.ArmWake(actx, r.db)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Debug("arming the wake-up failed; the relay may wait for its next poll", "err", err)
			if isUndefinedFunction(err) {
				r.armAfter = time.Now().Add(armRetry)
			}
		}
		return readAgain
	}
	if disarmed {
		w.unsure, w.known = true, false
		return true
	}
	if w.unsure && !w.known && idle > unsureWait {
		// Whoever inserted while the flag was disarmed and has not ended
		// holds its lock still: the list is a superset of what to wait for.
		writers, err := r.arm.InFlightWriters(actx, r.db)
		if err != nil {
			return readAgain
		}
		if writers.None() {
			w.unsure = false
			return true
		}
		w.writers, w.known = writers, true
	}
	return readAgain
}

// wakeState is the worker's knowledge of the wake-up: whether a wait for a
// notification can be trusted.
type wakeState struct {
	unsure  bool            // writers may commit without notifying
	known   bool            // writers lists them (a superset)
	writers dialect.Writers // wait for these to end
}

// idleFor is how long the worker waits after an empty read, idle as the
// backoff says, or less while a notification cannot be trusted.
func (r *Relay) idleFor(idle time.Duration) time.Duration {
	if r.wake.unsure {
		return min(idle, max(r.cfg.MinPollInterval, unsureWait))
	}
	return idle
}

// unsureWait is the longest wait between two reads while writers that may
// commit without notifying are running.
const unsureWait = 25 * time.Millisecond

// armRetry is the pause after a failure to arm the wake-up because the
// arming function does not exist (a database not migrated yet).
const armRetry = time.Minute

// isUndefinedFunction reports whether err is PostgreSQL's "function does
// not exist" (SQLSTATE 42883).
func isUndefinedFunction(err error) bool {
	var st interface{ SQLState() string }
	return errors.As(err, &st) && st.SQLState() == "42883"
}
