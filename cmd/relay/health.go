package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/outboxrelay/outbox"
)

// health follows the relay's work loop and lease keeper for /healthz,
// /readyz and --liveness-file. The loop is healthy while its last turn is
// at most maxStall ago, or while it waits out a backoff of the whole loop
// it announced (plus maxStall), and before its first turn (the relay is
// waiting for its database or broker then, with a line per try: readiness,
// not liveness, is what fails). The lease keeper is healthy while it
// finished a round, done or failed (a database that does not answer is
// readiness's failure), at most keeperGap + maxStall ago, counted from the
// loop's first turn until its first round: a keeper stuck in a round lets
// the leases expire while the loop turns on, idle.
type health struct {
	outbox.NopObserver
	maxStall     time.Duration
	keeperGap    time.Duration // the longest a healthy keeper goes between rounds
	livenessFile string
	log          *slog.Logger

	mu         sync.Mutex
	firstCycle time.Time
	lastCycle  time.Time
	lastRound  time.Time // the lease keeper's last round ended
	waitUntil  time.Time // end of the last backoff announced
	shards     int
	lastTouch  time.Time
	touchErr   bool // a failure to touch the liveness file was logged
}

// touchEvery bounds how often the liveness file is touched: at most once a
// second, however fast the loop turns.
const touchEvery = time.Second

func newHealth(maxStall time.Duration, livenessFile string, log *slog.Logger) *health {
	return &health{maxStall: maxStall, livenessFile: livenessFile, log: log}
}

// OnCycle implements outbox.RelayObserver: the loop turned.
func (h *health) OnCycle(e outbox.CycleEvent) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.firstCycle.IsZero() {
		h.firstCycle = now
	}
	h.lastCycle, h.shards = now, e.Shards
	if h.livenessFile != "" && now.Sub(h.lastTouch) >= touchEvery && h.keeperErr(now) == nil {
		h.lastTouch = now
		h.touch(now)
	}
}

// OnBackoff implements outbox.RelayObserver: the loop waits on purpose.
// Only a wait of the whole loop counts: a paused topic does not stop the
// loop, which keeps turning (and must, to stay healthy). The liveness file
// is stamped with the end of the wait, so that an exec probe checking its
// age sees a loop that is waiting, not stuck.
func (h *health) OnBackoff(e outbox.BackoffEvent) {
	if e.Reason == outbox.BackoffTopicPaused {
		return
	}
	until := time.Now().Add(e.Duration)
	h.mu.Lock()
	defer h.mu.Unlock()
	if until.After(h.waitUntil) {
		h.waitUntil = until
		if h.livenessFile != "" && h.keeperErr(time.Now()) == nil {
			h.touch(until)
		}
	}
}

// OnLeases implements outbox.RelayObserver.
func (h *health) OnLeases(e outbox.LeaseEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.shards = e.Held
}

// OnLeaseRound implements outbox.RelayObserver: the lease keeper is alive.
func (h *health) OnLeaseRound(e outbox.LeaseRoundEvent) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastRound, h.shards = now, e.Held
}

// keeperErr returns why the lease keeper is stuck, or nil. Called with
// h.mu held.
func (h *health) keeperErr(now time.Time) error {
	last := h.lastRound
	if last.IsZero() {
		last = h.firstCycle
	}
	if last.IsZero() {
		return nil
	}
	bound := h.keeperGap + h.maxStall
	if now.Sub(last) <= bound {
		return nil
	}
	return fmt.Errorf("the lease keeper finished no round for %s (bound %s)", now.Sub(last).Round(time.Millisecond), bound)
}

// touch sets the liveness file's times to now (or the end of a wait),
// creating it if needed. Called with h.mu held.
func (h *health) touch(now time.Time) {
	err := os.Chtimes(h.livenessFile, now, now)
	if errors.Is(err, os.ErrNotExist) {
		var f *os.File
		if f, err = os.OpenFile(h.livenessFile, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			err = f.Close()
		}
	}
	if err != nil && !h.touchErr {
		h.touchErr = true
		h.log.Error("cannot touch the liveness file; exec probes on it will fail", "path", h.livenessFile, "err", err)
	} else if err == nil {
		h.touchErr = false
	}
}

// healthy returns nil while the loop makes progress, or why not.
func (h *health) healthy(now time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	last := h.lastCycle
	if last.IsZero() {
		return nil // not started: waiting for the database or the broker
	}
	if now.Sub(last) <= h.maxStall || now.Before(h.waitUntil.Add(h.maxStall)) {
		return h.keeperErr(now)
	}
	return fmt.Errorf("the work loop made no progress for %s (bound %s)", now.Sub(last).Round(time.Millisecond), h.maxStall)
}

// running reports whether the loop has turned at least once, and how many
// shards the relay holds.
func (h *health) running() (bool, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.lastCycle.IsZero(), h.shards
}
