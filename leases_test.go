package outbox

import (
	"slices"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

func leasesOf(shards ...int) []dialect.Lease {
	out := make([]dialect.Lease, len(shards))
	for i, s := range shards {
		out[i] = dialect.Lease{Shard: s, Fence: int64(10 + s)}
	}
	return out
}

func shardsOf(ls []dialect.Lease) []int {
	out := make([]int, len(ls))
	for i, l := range ls {
		out[i] = l.Shard
	}
	return out
}

func TestFairShare(t *testing.T) {
	for _, tc := range []struct{ shards, live, want int }{
		{64, 0, 64}, {64, 1, 64}, {64, 2, 32}, {64, 3, 22}, {64, 64, 1}, {64, 100, 1}, {1, 3, 1},
	} {
		if got := fairShare(tc.shards, tc.live); got != tc.want {
			t.Errorf("fairShare(%d, %d) = %d, want %d", tc.shards, tc.live, got, tc.want)
		}
	}
}

func TestLeaseBookRenewalLosesWhatWasNotRenewed(t *testing.T) {
	b := newLeaseBook()
	now := time.Now()
	b.acquired(leasesOf(1, 2, 3), now.Add(time.Second))
	if lost := b.renewed(leasesOf(1, 3), now.Add(10*time.Second)); lost != 1 {
		t.Fatalf("lost %d, want 1", lost)
	}
	if got := shardsOf(b.leases()); !slices.Equal(got, []int{1, 3}) {
		t.Fatalf("held %v, want [1 3]", got)
	}
	// The renewal moved the deadline: valid with a 5 s margin.
	if v := b.valid(now, 5*time.Second); !v[1] || !v[3] || len(v) != 2 {
		t.Fatalf("valid %v, want 1 and 3", v)
	}
}

func TestLeaseBookValidKeepsAMargin(t *testing.T) {
	b := newLeaseBook()
	now := time.Now()
	b.acquired(leasesOf(1), now.Add(3*time.Second))
	b.acquired(leasesOf(2), now.Add(time.Second))
	if v := b.valid(now, 2*time.Second); !v[1] || v[2] {
		t.Fatalf("valid %v: want shard 1 (3 s left) and not shard 2 (1 s left, margin 2 s)", v)
	}
	if v := b.valid(now.Add(time.Second), 2*time.Second); len(v) != 0 {
		t.Fatalf("valid %v: want none with 2 s left and a 2 s margin", v)
	}
}

func TestLeaseBookHandBack(t *testing.T) {
	now := time.Now()
	t.Run("highest first", func(t *testing.T) {
		b := newLeaseBook()
		b.acquired(leasesOf(0, 1, 2, 3, 4), now.Add(time.Minute))
		if got := shardsOf(b.handBack(2)); !slices.Equal(got, []int{4, 3, 2}) {
			t.Fatalf("handed back %v, want [4 3 2]", got)
		}
		if got := shardsOf(b.leases()); !slices.Equal(got, []int{0, 1}) {
			t.Fatalf("held %v, want [0 1]", got)
		}
		if b.missing(2) != 0 || b.missing(5) != 3 {
			t.Fatalf("missing(2) = %d, missing(5) = %d; want 0 and 3", b.missing(2), b.missing(5))
		}
	})
	t.Run("shards in use become surplus", func(t *testing.T) {
		b := newLeaseBook()
		b.acquired(leasesOf(0, 1, 2, 3), now.Add(time.Minute))
		b.use([]int{3, 0})
		// Two above the share: 3 is in use, so it stays held as surplus
		// and counts as one of the two; 2 goes.
		if got := shardsOf(b.handBack(2)); !slices.Equal(got, []int{2}) {
			t.Fatalf("handed back %v, want [2]", got)
		}
		if got := shardsOf(b.leases()); !slices.Equal(got, []int{0, 1, 3}) {
			t.Fatalf("held %v, want [0 1 3]", got)
		}
		if v := b.valid(now, time.Second); v[3] || !v[0] || !v[1] {
			t.Fatalf("valid %v: a surplus shard must not be read again", v)
		}
		// The keeper needs no more shards while the surplus is held.
		if n := b.missing(2); n != 0 {
			t.Fatalf("missing %d, want 0", n)
		}
		b.requestRound()
		select {
		case <-b.kick:
		default:
			t.Fatal("a batch that settles with surplus shards must ask for a round")
		}
		// The batch settled: the next round hands the surplus back.
		b.use(nil)
		if got := shardsOf(b.handBack(2)); !slices.Equal(got, []int{3}) {
			t.Fatalf("handed back %v after the batch, want [3]", got)
		}
		if v := b.valid(now, time.Second); !v[0] || !v[1] || len(v) != 2 {
			t.Fatalf("valid %v, want 0 and 1", v)
		}
	})
	t.Run("at or below the share", func(t *testing.T) {
		b := newLeaseBook()
		b.acquired(leasesOf(5, 6), now.Add(time.Minute))
		b.use([]int{6})
		if got := b.handBack(2); got != nil {
			t.Fatalf("handed back %v at the share", got)
		}
		b.requestRound()
		select {
		case <-b.kick:
			t.Fatal("no surplus: no round to ask for")
		default:
		}
	})
}

func TestLeaseBookTakeAllAndSignals(t *testing.T) {
	b := newLeaseBook()
	b.acquired(leasesOf(7, 3), time.Now().Add(time.Minute))
	if got := shardsOf(b.takeAll()); !slices.Equal(got, []int{3, 7}) {
		t.Fatalf("takeAll %v, want [3 7]", got)
	}
	if b.count() != 0 {
		t.Fatalf("count %d after takeAll", b.count())
	}
	// signalChanged never blocks and wakes one waiter.
	b.signalChanged()
	b.signalChanged()
	select {
	case <-b.changed:
	default:
		t.Fatal("no change signalled")
	}
	select {
	case <-b.changed:
		t.Fatal("two signals queued: the channel must coalesce them")
	default:
	}
}
