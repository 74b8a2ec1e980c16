package dialecttest

import (
	"database/sql"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

func (s suite) ensureShards(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Dialect.EnsureShards(ctx, db, 64); err != nil {
				t.Errorf("concurrent EnsureShards: %v", err)
			}
		}()
	}
	wg.Wait()
	if err := s.Dialect.EnsureShards(ctx, db, 64); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+dialect.TableShards).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 64 {
		t.Fatalf("%d shard rows, want 64", n)
	}
	if err := s.Dialect.EnsureShards(ctx, db, 0); err == nil {
		t.Fatal("EnsureShards(0) succeeded")
	}
}

func (s suite) claimersNeverShareAShard(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	if err := s.Dialect.EnsureShards(ctx, db, 16); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	owner := map[int]string{}
	var wg sync.WaitGroup
	for c := 0; c < 6; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			me := fmt.Sprintf("relay-%d", c)
			for round := 0; round < 5; round++ {
				leases, err := s.Dialect.Acquire(ctx, db, me, 16, time.Minute)
				if err != nil {
					if isRetriableContention(err) {
						continue
					}
					t.Errorf("%s: Acquire: %v", me, err)
					return
				}
				mu.Lock()
				for _, l := range leases {
					if o, ok := owner[l.Shard]; ok {
						t.Errorf("shard %d given to %s while %s holds it", l.Shard, me, o)
					}
					owner[l.Shard] = me
				}
				mu.Unlock()
				time.Sleep(time.Millisecond)
				mu.Lock()
				for _, l := range leases {
					delete(owner, l.Shard)
				}
				mu.Unlock()
				if err := s.Dialect.Release(ctx, db, me, leases); err != nil {
					t.Errorf("%s: Release: %v", me, err)
				}
			}
		}()
	}
	wg.Wait()
	// And one claim takes everything: all 16, each once.
	leases, err := s.Dialect.Acquire(ctx, db, "last", 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, l := range leases {
		if seen[l.Shard] {
			t.Fatalf("shard %d returned twice", l.Shard)
		}
		seen[l.Shard] = true
	}
	if len(seen) != 16 {
		t.Fatalf("acquired %d free shards, want 16", len(seen))
	}
}

func sortLeases(ls []dialect.Lease) []dialect.Lease {
	sort.Slice(ls, func(i, j int) bool { return ls[i].Shard < ls[j].Shard })
	return ls
}

func (s suite) expiredLeaseTakenOver(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	if err := s.Dialect.EnsureShards(ctx, db, 4); err != nil {
		t.Fatal(err)
	}
	old, err := s.Dialect.Acquire(ctx, db, "a", 10, 500*time.Millisecond)
	if err != nil || len(old) != 4 {
		t.Fatalf("a: Acquire = %v, %v; want 4 leases", old, err)
	}
	if got, err := s.Dialect.Acquire(ctx, db, "b", 10, time.Minute); err != nil || len(got) != 0 {
		t.Fatalf("b took %v (err %v) from a live lease", got, err)
	}
	// The owner renews before expiry: still its own.
	if got, err := s.Dialect.Renew(ctx, db, "a", old, 500*time.Millisecond); err != nil || len(got) != 4 {
		t.Fatalf("a: Renew = %v, %v; want 4", got, err)
	}
	var taken []dialect.Lease
	deadline := time.Now().Add(10 * time.Second)
	for len(taken) < 4 {
		got, err := s.Dialect.Acquire(ctx, db, "b", 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		taken = append(taken, got...)
		if time.Now().After(deadline) {
			t.Fatalf("b took %d of 4 expired shards", len(taken))
		}
		time.Sleep(50 * time.Millisecond)
	}
	sortLeases(old)
	sortLeases(taken)
	for i := range taken {
		if taken[i].Fence <= old[i].Fence {
			t.Fatalf("shard %d: fence %d after takeover, not above %d", taken[i].Shard, taken[i].Fence, old[i].Fence)
		}
	}
	if got, err := s.Dialect.Renew(ctx, db, "a", old, time.Minute); err != nil || len(got) != 0 {
		t.Fatalf("old owner renewed %v (err %v) after takeover; want nothing", got, err)
	}
	if err := s.Dialect.Release(ctx, db, "a", old); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Dialect.Renew(ctx, db, "b", taken, time.Minute); err != nil || len(got) != 4 {
		t.Fatalf("new owner Renew = %v, %v after old owner's Release; want 4", got, err)
	}
}

func (s suite) release(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	if err := s.Dialect.EnsureShards(ctx, db, 4); err != nil {
		t.Fatal(err)
	}
	a, err := s.Dialect.Acquire(ctx, db, "a", 3, time.Hour)
	if err != nil || len(a) != 3 {
		t.Fatalf("a: Acquire(3) = %v, %v", a, err)
	}
	b, err := s.Dialect.Acquire(ctx, db, "b", 10, time.Hour)
	if err != nil || len(b) != 1 {
		t.Fatalf("b: Acquire = %v, %v; want the 1 free shard", b, err)
	}
	if err := s.Dialect.Release(ctx, db, "a", a[:2]); err != nil {
		t.Fatal(err)
	}
	got, err := s.Dialect.Acquire(ctx, db, "b", 10, time.Hour)
	if err != nil || len(got) != 2 {
		t.Fatalf("b: Acquire after a released 2 = %v, %v; want 2 at once", got, err)
	}
	if renewed, err := s.Dialect.Renew(ctx, db, "a", a, time.Hour); err != nil || len(renewed) != 1 {
		t.Fatalf("a: Renew = %v, %v; want only the shard it kept", renewed, err)
	}
}

func (s suite) heartbeat(t *testing.T, db *sql.DB) {
	ctx := ctxT(t)
	live, err := s.Dialect.Heartbeat(ctx, db, "a", time.Minute)
	if err != nil || live != 1 {
		t.Fatalf("Heartbeat(a) = %d, %v; want 1", live, err)
	}
	if live, err = s.Dialect.Heartbeat(ctx, db, "b", time.Minute); err != nil || live != 2 {
		t.Fatalf("Heartbeat(b) = %d, %v; want 2", live, err)
	}
	if live, err = s.Dialect.Heartbeat(ctx, db, "a", time.Minute); err != nil || live != 2 {
		t.Fatalf("Heartbeat(a) again = %d, %v; want 2", live, err)
	}
	if err := s.Dialect.Deregister(ctx, db, "a"); err != nil {
		t.Fatal(err)
	}
	if live, err = s.Dialect.Heartbeat(ctx, db, "b", time.Minute); err != nil || live != 1 {
		t.Fatalf("after Deregister(a): %d, %v; want 1", live, err)
	}
	// c goes silent; b's heartbeat with a short ttl forgets it.
	if _, err := s.Dialect.Heartbeat(ctx, db, "c", time.Minute); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	if live, err = s.Dialect.Heartbeat(ctx, db, "b", 200*time.Millisecond); err != nil || live != 1 {
		t.Fatalf("silent relay not forgotten: live = %d, %v; want 1", live, err)
	}
}
