package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/ctxtime"
)

// ensureShards creates the shard rows, retrying while the database is
// unreachable, with one log line per failure and a growing pause.
func (r *Relay) ensureShards(ctx context.Context) error {
	wait := 500 * time.Millisecond
	for {
		// A deadline, so that MySQL/MariaDB bound the statement on the
		// server too (see dialect's bounded).
		octx, cancel := context.WithTimeout(ctx, outcomeTimeout)
		err := r.cfg.Dialect.EnsureShards(octx, r.db, r.cfg.NumShards)
		if err == nil {
			r.checkShardCount(octx)
			cancel()
			return nil
		}
		cancel()
		if dialect.IsMissingTable(err) {
			r.log.Error(`the outbox tables do not exist: run "relay migrate" (or migrations.Up); retrying`, "err", err, "retry_in", wait)
		} else {
			r.log.Error("cannot prepare the shard table; retrying", "err", err, "retry_in", wait)
		}
		if !ctxtime.Sleep(ctx, wait) {
			return ctx.Err()
		}
		wait = min(wait*2, 30*time.Second)
	}
}

// checkShardCount logs an error when pending messages sit in shards this
// relay never reads: the application uses more shards than NumShards.
func (r *Relay) checkShardCount(ctx context.Context) {
	top, ok, err := dialect.MaxPendingShard(ctx, r.db)
	if err == nil && ok && top >= r.cfg.NumShards {
		r.log.Error("messages wait in shards this relay does not read: its shard count is below the application's; "+
			"set --shards (RelayConfig.NumShards) to the application's outbox.Config.NumShards",
			"relay_shards", r.cfg.NumShards, "highest_pending_shard", top)
	}
}

// keepLeases heartbeats, renews, and moves the relay towards its fair share
// of shards: ceil(NumShards / live relays). It hands back shards above the
// share (not those of the batch in flight) so that a new relay gets work
// within about one RenewInterval, and polls every second while below it.
// After ctx ends it only renews, for the batch in flight, until work ends.
func (r *Relay) keepLeases(ctx, work context.Context) {
	lastCheck := time.Now()
	for {
		wait := r.cfg.RenewInterval
		// A round that hangs (a half-open connection) must not outlive the
		// leases it is meant to keep.
		rctx, cancel := context.WithTimeout(work, r.cfg.LeaseDuration/2)
		start := time.Now()
		err := r.leaseRound(rctx, ctx.Err() == nil, &wait)
		r.leaseRoundEvent(time.Since(start), err)
		if err == nil && time.Since(lastCheck) > time.Minute {
			r.checkShardCount(rctx)
			lastCheck = time.Now()
		}
		cancel()
		if err != nil && work.Err() == nil {
			r.log.Warn("lease maintenance failed", "err", err)
			wait = min(wait, time.Second)
		}
		t := time.NewTimer(wait)
		select {
		case <-work.Done():
			t.Stop()
			return
		case <-r.leases.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// leaseRound heartbeats, renews what the relay holds, hands back what is
// above its fair share and, when claim is set, acquires what is missing. It
// shortens *wait when the relay is below its share, so it asks again soon.
func (r *Relay) leaseRound(ctx context.Context, claim bool, wait *time.Duration) error {
	d, db, id, lease := r.cfg.Dialect, r.db, r.cfg.ID, r.cfg.LeaseDuration
	live, err := d.Heartbeat(ctx, db, id, lease)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	share := fairShare(r.cfg.NumShards, live)

	start := time.Now()
	renewed, err := d.Renew(ctx, db, id, r.leases.leases(), lease)
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	lost := r.leases.renewed(renewed, start.Add(lease))
	if lost > 0 {
		r.log.Warn("lost shard leases to another relay", "lost", lost)
	}
	r.leaseEvent(LeaseLost, lost)
	extra := r.leases.handBack(share)
	need := 0
	if claim {
		need = r.leases.missing(share)
	}
	if lost > 0 || len(extra) > 0 || need > 0 {
		// Even if what follows fails: the worker must see the losses.
		defer r.leases.signalChanged()
	}
	if len(extra) > 0 {
		if err := d.Release(ctx, db, id, extra); err != nil {
			return fmt.Errorf("release: %w", err)
		}
		r.log.Debug("handed back shards above the fair share", "released", len(extra), "live_relays", live)
		r.leaseEvent(LeaseHandedBack, len(extra))
	}
	if need == 0 {
		return nil
	}
	start = time.Now()
	got, err := d.Acquire(ctx, db, id, need, lease)
	if err != nil {
		return fmt.Errorf("acquire: %w", err)
	}
	r.leases.acquired(got, start.Add(lease))
	r.leaseEvent(LeaseAcquired, len(got))
	if len(got) > 0 {
		r.log.Debug("acquired shards", "acquired", len(got), "live_relays", live)
	}
	if len(got) < need {
		*wait = min(*wait, time.Second) // someone should hand shards back soon
	}
	return nil
}
