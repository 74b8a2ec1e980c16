//go:build unix

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"time"
)

// Faults come from two streams that run side by side, so that they also
// overlap: one on the relay processes (SIGKILL and restart, SIGSTOP past
// the lease then SIGCONT, a fourth relay joining then leaving with
// SIGTERM), one on the infrastructure (broker stopped and restarted on the
// same port, broker failing produce requests, database connections killed
// from the server). Each stream first plays every kind once in a random
// order, then picks at random, with a random pause between faults.
const (
	kindKill    = "kill"
	kindStop    = "stop"
	kindJoin    = "join"
	kindBroker  = "broker-restart"
	kindProduce = "produce-errors"
	kindDBKill  = "db-kill"
)

func (h *harness) runFaults(dur time.Duration, seed uint64) {
	deadline := time.Now().Add(dur)
	procKinds := []string{kindKill, kindStop, kindJoin}
	infraKinds := []string{kindBroker, kindProduce, kindDBKill}
	if h.name == "sqlite" {
		infraKinds = infraKinds[:2]
		h.logf("database connection kills skipped on sqlite: no server, no connections to kill")
	}
	var wg sync.WaitGroup
	wg.Go(func() { h.stream(deadline, 2*time.Second, procKinds, rand.New(rand.NewPCG(seed, 1))) })
	wg.Go(func() { h.stream(deadline, 4*time.Second, infraKinds, rand.New(rand.NewPCG(seed, 2))) })
	wg.Wait()
}

// isolatedRounds is how many times runIsolated plays every kind of fault
// after a run of dur: once in short mode, and once more for every four
// minutes of faults.
func isolatedRounds(dur time.Duration) int { return 1 + int(dur/(4*time.Minute)) }

// runIsolated injects every kind of fault alone, rounds times, each in a
// new random order: the next begins only once the previous one's recovery
// bound has passed, so that the recovery each kind needs is measured
// without the others' overlap (the dense streams of runFaults overlap
// almost always).
func (h *harness) runIsolated(rounds int, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 3))
	kinds := []string{kindKill, kindStop, kindJoin, kindBroker, kindProduce, kindDBKill}
	if h.name == "sqlite" {
		kinds = kinds[:5]
	}
	for range rounds {
		rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
		for _, kind := range kinds {
			h.relays.revive()
			h.inject(kind, rng)
			// Until the fault's window has passed (see window), and a second.
			f := faultWindow{kind: kind, start: time.Now(), end: time.Now()}
			_, to := window(f, h.limits)
			time.Sleep(time.Until(to) + time.Second)
		}
	}
}

func (h *harness) stream(deadline time.Time, first time.Duration, kinds []string, rng *rand.Rand) {
	order := append([]string(nil), kinds...)
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	time.Sleep(first)
	for i := 0; time.Now().Before(deadline); i++ {
		kind := kinds[rng.IntN(len(kinds))]
		if i < len(order) {
			kind = order[i]
		}
		h.relays.revive()
		h.inject(kind, rng)
		pause := time.Duration(1000+rng.IntN(2000)) * time.Millisecond
		if f := (faultWindow{kind: kind}); f.outage() {
			// Broker outages one after another are one long outage in
			// which nobody can publish and no stall can be seen: the next
			// one waits until this one's recovery bound has passed. The
			// relay stream goes on meanwhile, so faults still overlap.
			pause += faultBound(f, h.limits)
		}
		sleepUntil(minTime(deadline, time.Now().Add(pause)))
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func jitter(rng *rand.Rand, base, spread time.Duration) time.Duration {
	return base + time.Duration(rng.Int64N(int64(spread)+1)).Round(100*time.Millisecond)
}

func (h *harness) inject(kind string, rng *rand.Rand) {
	switch kind {
	case kindKill:
		slot := h.busiestSlot(rng)
		p := h.relays.get(slot)
		if p == nil {
			return
		}
		down := jitter(rng, 300*time.Millisecond, 1500*time.Millisecond)
		f := h.fault(kind, "SIGKILL %s (%s), restart after %s", slot, p.id, down)
		p.expected.Store(true)
		_ = p.Signal(syscall.SIGKILL)
		if !p.Wait(10 * time.Second) {
			h.t.Errorf("%s still running 10s after SIGKILL", p.id)
		}
		h.ended(f, 1) // its shards wait for the lease, whenever it restarts
		time.Sleep(down)
		if np := h.relays.start(slot); np != nil {
			h.logf("%s restarted as %s", slot, np.id)
		}

	case kindStop:
		slot := h.busiestSlot(rng)
		p := h.relays.get(slot)
		if p == nil {
			return
		}
		hold := jitter(rng, 2*h.limits.lease, 1500*time.Millisecond)
		f := h.fault(kind, "SIGSTOP %s (%s) for %s (lease %s): a paused zombie", slot, p.id, hold, h.limits.lease)
		p.stopped.Store(true)
		_ = p.Signal(syscall.SIGSTOP)
		time.Sleep(hold)
		_ = p.Signal(syscall.SIGCONT)
		p.stopped.Store(false)
		h.ended(f, 1)
		h.logf("SIGCONT %s", p.id)

	case kindJoin:
		stay := jitter(rng, 4*time.Second, 3*time.Second)
		p := h.relays.start("relay-4")
		if p == nil {
			return
		}
		f := h.fault(kind, "relay-4 joins (%s) for %s: rebalance", p.id, stay)
		time.Sleep(stay)
		h.relays.remove("relay-4")
		p.expected.Store(true)
		_ = p.Signal(syscall.SIGTERM)
		took := h.relays.checkTerm(p)
		cut := 0
		if h.name == "sqlite" {
			// Lease rounds queue for SQLite's one write lock with every
			// writer: one that cannot renew in time while shards change
			// hands leaves its batch to the shard's next owner.
			cut = h.relays.running() + 1
		}
		h.ended(f, cut)
		h.logf("relay-4 left (%s): SIGTERM, exit status %d after %s; it published %d records", p.id, p.ExitCode(), took.Round(time.Millisecond), p.published())

	case kindBroker:
		down := jitter(rng, 2*time.Second, 2*time.Second)
		f := h.fault(kind, "broker stopped for %s, then restarted on the same port", down)
		h.broker.stop()
		time.Sleep(down)
		err := h.broker.start()
		h.ended(f, h.relays.running()) // a request appended as the broker went down lost its answer
		if err != nil {
			h.t.Errorf("restarting the broker: %v", err)
			return
		}
		h.logf("broker up again on %s", h.broker.addr())

	case kindProduce:
		hold := jitter(rng, 3*time.Second, 2*time.Second)
		r0, l0 := h.broker.rejected.Load(), h.broker.lostAcks.Load()
		f := h.fault(kind, "broker fails produce requests for %s (NOT_LEADER_FOR_PARTITION, REQUEST_TIMED_OUT, UNKNOWN_TOPIC_OR_PARTITION, lost acks)", hold)
		h.broker.faulty.Store(true)
		time.Sleep(hold)
		h.broker.faulty.Store(false)
		h.ended(f, h.relays.running()) // an ack lost after the append: each relay may send its batch again
		h.logf("produce requests pass again: %d refused, %d acks lost", h.broker.rejected.Load()-r0, h.broker.lostAcks.Load()-l0)

	case kindDBKill:
		rounds := 1 + rng.IntN(3)
		f := h.fault(kind, "database connections of the relays and writers killed from the server, %d round(s)", rounds)
		defer func() { h.ended(f, h.relays.running()) }() // each may have been cut in its ack
		total := 0
		for r := range rounds {
			if r > 0 {
				time.Sleep(jitter(rng, 200*time.Millisecond, 800*time.Millisecond))
			}
			n, err := h.killConnections()
			if err != nil {
				h.t.Errorf("killing database connections: %v", err)
				return
			}
			total += n
		}
		h.killedConn.Add(int64(total))
		h.logf("%d database connections killed", total)
	}
}

// busiestSlot is the slot of the relay that holds the most shards now (a
// crash of a relay that holds none, just restarted, would prove nothing
// about takeover); a random one when the database cannot tell.
func (h *harness) busiestSlot(rng *rand.Rand) string {
	slot := fmt.Sprintf("relay-%d", 1+rng.IntN(numRelays))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var owner string
	err := h.admin.QueryRowContext(ctx, "SELECT owner FROM outbox_shards WHERE owner IS NOT NULL GROUP BY owner ORDER BY COUNT(*) DESC, owner LIMIT 1").Scan(&owner)
	if err != nil {
		return slot
	}
	for i := 1; i <= numRelays; i++ {
		s := fmt.Sprintf("relay-%d", i)
		if p := h.relays.get(s); p != nil && p.id == owner {
			return s
		}
	}
	return slot
}

// killConnections kills, from the server side, the connections of this
// run's relays and writers: on PostgreSQL those with the run's
// application_name, on MySQL those using the run's database, never the
// admin connection that asks.
func (h *harness) killConnections() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch h.name {
	case "postgres":
		rows, err := h.admin.QueryContext(ctx,
			"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()", h.appName)
		if err != nil {
			return 0, err
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var ok bool
			if err := rows.Scan(&ok); err != nil {
				return n, err
			}
			if ok {
				n++
			}
		}
		return n, rows.Err()
	case "mysql":
		rows, err := h.admin.QueryContext(ctx,
			"SELECT id FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()")
		if err != nil {
			return 0, err
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return 0, err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, err
		}
		n := 0
		for _, id := range ids {
			// The connection may have gone meanwhile (unknown thread id).
			if _, err := h.admin.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id)); err == nil {
				n++
			}
		}
		return n, nil
	}
	return 0, nil
}
