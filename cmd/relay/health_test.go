package main

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/outboxrelay/outbox"
)

// The health of the work loop: healthy before its first turn (waiting for
// its dependencies), while it turns, and while it waits out a backoff of
// the whole loop; a paused topic does not cover a stuck loop.
func TestHealth(t *testing.T) {
	const stall, keeperGap = time.Second, 3 * time.Second
	t0 := time.Now()
	for _, tc := range []struct {
		name    string
		events  func(h *health)
		at      time.Duration // after t0
		healthy bool
	}{
		{"before the first turn, however long", func(*health) {}, time.Hour, true},
		{"turning", func(h *health) { h.OnCycle(outbox.CycleEvent{}) }, stall / 2, true},
		{"stuck past the bound", func(h *health) { h.OnCycle(outbox.CycleEvent{}) }, 3 * stall, false},
		{"waiting out an outage", func(h *health) {
			h.OnCycle(outbox.CycleEvent{})
			h.OnBackoff(outbox.BackoffEvent{Reason: outbox.BackoffUnavailable, Duration: time.Minute})
			h.lastRound = t0.Add(29 * time.Second) // the lease keeper goes on
		}, 30 * time.Second, true},
		{"stuck after the outage wait and the bound", func(h *health) {
			h.OnCycle(outbox.CycleEvent{})
			h.OnBackoff(outbox.BackoffEvent{Reason: outbox.BackoffUnavailable, Duration: time.Minute})
		}, time.Minute + 3*stall, false},
		{"a paused topic does not cover a stuck loop", func(h *health) {
			h.OnCycle(outbox.CycleEvent{})
			h.OnBackoff(outbox.BackoffEvent{Reason: outbox.BackoffTopicPaused, Topic: "t", Duration: time.Minute})
		}, 30 * time.Second, false},
		{"the lease keeper stuck while the loop turns", func(h *health) {
			h.OnLeaseRound(outbox.LeaseRoundEvent{})
			h.lastRound = h.lastRound.Add(-time.Hour)
			h.OnCycle(outbox.CycleEvent{})
		}, stall / 2, false},
		{"the lease keeper stuck in its first round", func(h *health) {
			h.OnCycle(outbox.CycleEvent{})
			h.firstCycle = h.firstCycle.Add(-time.Hour)
		}, stall / 2, false},
		{"the lease keeper stuck during an outage wait", func(h *health) {
			h.OnLeaseRound(outbox.LeaseRoundEvent{})
			h.lastRound = h.lastRound.Add(-time.Hour)
			h.OnCycle(outbox.CycleEvent{})
			h.OnBackoff(outbox.BackoffEvent{Reason: outbox.BackoffUnavailable, Duration: time.Minute})
		}, 30 * time.Second, false},
		{"the lease keeper between rounds, a failed one included", func(h *health) {
			h.OnLeaseRound(outbox.LeaseRoundEvent{Err: errors.New("database down")})
			h.lastRound = h.lastRound.Add(-keeperGap)
			h.OnCycle(outbox.CycleEvent{})
		}, stall / 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHealth(stall, "", slog.New(slog.DiscardHandler))
			h.keeperGap = keeperGap
			tc.events(h)
			err := h.healthy(t0.Add(tc.at))
			if (err == nil) != tc.healthy {
				t.Errorf("healthy = %v (%v), want %v", err == nil, err, tc.healthy)
			}
		})
	}
}

// A backoff of the whole loop stamps the liveness file with the end of the
// wait, so that a probe on its age does not kill a relay that waits.
func TestHealthLivenessFileDuringBackoff(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alive")
	h := newHealth(time.Second, path, slog.New(slog.DiscardHandler))
	h.OnCycle(outbox.CycleEvent{})
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	h.OnBackoff(outbox.BackoffEvent{Reason: outbox.BackoffUnavailable, Duration: time.Minute})
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := after.ModTime().Sub(before.ModTime()); d < 50*time.Second {
		t.Errorf("the liveness file moved %s forward on a 1m backoff, want about 1m", d)
	}
	h.OnBackoff(outbox.BackoffEvent{Reason: outbox.BackoffTopicPaused, Topic: "t", Duration: time.Hour})
	again, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !again.ModTime().Equal(after.ModTime()) {
		t.Errorf("a paused topic moved the liveness file to %s", again.ModTime())
	}
}
