package outbox

import (
	"context"
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

// armWake asks the next committed insert to notify, before an idle wait:
// the database notifies only while a relay waits, so busy writers do not
// serialize their commits on NOTIFY. It reports whether the caller should
// read once more before it waits: the wake-up was disarmed, so a row was
// inserted since the last arming, and it may have committed after the
// caller's last read without notifying anyone.
//
// A relay that cannot arm (a database migrated before the wake-up existed
// notifies on every insert anyway; one that is down fails the next read
// too) waits as it would have: woken by a notification if one comes, else
// at its next poll. After a failure it does not try again for armRetry: a
// database whose migrations predate the wake-up would fail every time.
func (r *Relay) armWake(ctx context.Context) (readAgain bool) {
	if r.arm == nil || time.Now().Before(r.armAfter) {
		return false
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	disarmed, err := r.arm.ArmWake(actx, r.db)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Debug("arming the wake-up failed; the relay may wait for its next poll", "err", err)
			r.armAfter = time.Now().Add(armRetry)
		}
		return false
	}
	return disarmed
}

// armRetry is the pause after a failure to arm the wake-up.
const armRetry = time.Minute
