package dialecttest

import (
	"bytes"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

func (s suite) shardIDOrder(t *testing.T, db *sql.DB) {
	for tx := 0; tx < 10; tx++ {
		var batch []dialect.InsertRow
		for i := 0; i < 20; i++ {
			n := tx*20 + i
			batch = append(batch, onShard("m"+strconv.Itoa(n), "k"+strconv.Itoa(n%13), n%numShards))
		}
		s.insert(t, db, batch...)
	}
	got := s.read(t, db, []int{1, 6}, 1000)
	if len(got) != 50 {
		t.Fatalf("read %d rows of shards 1 and 6, want 50", len(got))
	}
	for i, r := range got {
		if r.Shard != 1 && r.Shard != 6 {
			t.Fatalf("row of shard %d returned for shards [1 6]", r.Shard)
		}
		if i > 0 && r.RowID <= got[i-1].RowID {
			t.Fatalf("rows not in id order: %d after %d", r.RowID, got[i-1].RowID)
		}
	}
	first := s.read(t, db, allShards(), 10)
	if want := []string{"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"}; !slices.Equal(ids(first), want) {
		t.Fatalf("limit 10 read %v, want the 10 oldest %v", ids(first), want)
	}
}

func (s suite) delayedDelivery(t *testing.T, db *sql.DB) {
	later := onShard("later", "k", 0)
	later.Delay = time.Hour
	soon := onShard("soon", "k2", 0)
	soon.Delay = 400 * time.Millisecond
	s.insert(t, db, later, soon, onShard("now", "k3", 0))
	if got := ids(s.read(t, db, []int{0}, 10)); !slices.Equal(got, []string{"now"}) {
		t.Fatalf("read %v, want only [now]", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := ids(s.read(t, db, []int{0}, 10))
		if slices.Equal(got, []string{"soon", "now"}) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("delayed message never became available: read %v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// manyWaitingKeys checks the hold-back with few and with many waiting keys
// (a dialect may switch strategy with the count): every waiting key holds
// back its later rows, and only those; an earlier row of a waiting key, a
// keyless row and rows of other keys flow.
func (s suite) manyWaitingKeys(t *testing.T, db *sql.DB) {
	for _, n := range []int{3, 150} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			shard := 10
			if n > 10 {
				shard = 11
			}
			var all []dialect.InsertRow
			early := onShard(fmt.Sprintf("n%d-early", n), fmt.Sprintf("n%d-w0", n), shard)
			all = append(all, early)
			for i := 0; i < n; i++ {
				key := fmt.Sprintf("n%d-w%d", n, i)
				all = append(all, onShard(key+"-1", key, shard), onShard(fmt.Sprintf("n%d-free%d", n, i), fmt.Sprintf("n%d-f%d", n, i), shard), onShard(key+"-2", key, shard))
			}
			nokey := onShard(fmt.Sprintf("n%d-nokey", n), "", shard)
			nokey.Key, nokey.KeyHash = nil, 0
			all = append(all, nokey)
			s.insert(t, db, all...)
			recs := s.read(t, db, []int{shard}, 10_000)
			if len(recs) != len(all) {
				t.Fatalf("first read got %d rows, want %d", len(recs), len(all))
			}
			var retries []dialect.Retry
			var want []string
			for _, r := range recs {
				switch {
				case strings.HasSuffix(r.MessageID, "-1"):
					retries = append(retries, dialect.Retry{RowID: r.RowID, Delay: time.Hour, Err: "no"})
				case strings.HasSuffix(r.MessageID, "-2"):
				default:
					want = append(want, r.MessageID)
				}
			}
			if err := s.Dialect.Retry(ctxT(t), db, retries); err != nil {
				t.Fatal(err)
			}
			if got := ids(s.read(t, db, []int{shard}, 10_000)); !slices.Equal(got, want) {
				t.Fatalf("with %d keys waiting read %d rows %v..., want %d rows %v...", n, len(got), got[:min(len(got), 6)], len(want), want[:min(len(want), 6)])
			}
			// A small limit still skips the held-back rows, in id order.
			if got := ids(s.read(t, db, []int{shard}, 2)); !slices.Equal(got, want[:2]) {
				t.Fatalf("limit 2 read %v, want %v", got, want[:2])
			}
		})
	}
}

func (s suite) readExcludes(t *testing.T, db *sql.DB) {
	s.insert(t, db, onShard("x1", "x", 7), onShard("x2", "x", 7), onShard("y1", "y", 7), onShard("x3", "x", 7))
	recs := s.read(t, db, []int{7}, 10)
	if len(recs) != 4 {
		t.Fatalf("read %v, want 4 rows", ids(recs))
	}
	got, err := s.Dialect.ReadBatch(ctxT(t), db, dialect.ReadRequest{Shards: []int{7}, Limit: 2, Exclude: []int64{recs[0].RowID, recs[2].RowID}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), []string{"x2", "x3"}) {
		t.Fatalf("read excluding x1 and y1 gave %v, want [x2 x3]", ids(got))
	}

	// Runs of consecutive ids and scattered ids: a dialect may write them
	// as ranges or as a list, but must leave out exactly the ids given.
	var more []dialect.InsertRow
	for i := 0; i < 150; i++ {
		more = append(more, onShard(fmt.Sprintf("r%03d", i), "", 8))
	}
	s.insert(t, db, more...)
	rows := s.read(t, db, []int{8}, 1000)
	if len(rows) != 150 {
		t.Fatalf("read %d rows, want 150", len(rows))
	}
	for _, tc := range []struct {
		name string
		keep func(i int) bool
	}{
		{"all but one", func(i int) bool { return i == 50 }},
		{"two runs and the ends", func(i int) bool { return i == 0 || i == 70 || i == 71 || i == 149 }},
		{"every other", func(i int) bool { return i%2 == 1 }},
		{"none", func(int) bool { return false }},
	} {
		var excl []int64
		var want []string
		for i, r := range rows {
			if tc.keep(i) {
				want = append(want, r.MessageID)
			} else {
				excl = append(excl, r.RowID)
			}
		}
		got, err := s.Dialect.ReadBatch(ctxT(t), db, dialect.ReadRequest{Shards: []int{8}, Limit: 1000, Exclude: excl})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), want) {
			t.Errorf("%s: read %v, want %v", tc.name, ids(got), want)
		}
	}
}

func (s suite) readMaxBytes(t *testing.T, db *sql.DB) {
	var in []dialect.InsertRow
	for i := 0; i < 5; i++ {
		m := onShard(fmt.Sprintf("b%d", i), "", 6)
		m.Value = bytes.Repeat([]byte{'v'}, 100)
		in = append(in, m)
	}
	s.insert(t, db, in...)
	for _, tc := range []struct{ maxBytes, want int }{{0, 5}, {1, 1}, {100, 1}, {101, 2}, {250, 3}, {10_000, 5}} {
		got, err := s.Dialect.ReadBatch(ctxT(t), db, dialect.ReadRequest{Shards: []int{6}, Limit: 10, MaxBytes: tc.maxBytes})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tc.want || got[0].MessageID != "b0" {
			t.Errorf("MaxBytes %d: read %v, want the first %d", tc.maxBytes, ids(got), tc.want)
		}
	}
}
