package dialecttest

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

// concurrent: 8 writers enqueue 20,000 messages on 200 keys in
// transactions of 1-5 messages, a tenth of them rolled back, while 3
// claimers lease shards (with hand-back and rotation), read, fail one
// message in twenty with a short retry (leaving the rest of its key for
// later) and ack the others. At the end every committed message was acked
// exactly once, in per-key order, and no rolled-back message was ever read.
// It is one long function on purpose: the writers, the claimers and the
// final check share the ledgers declared at its top, and read best together.
func (s suite) concurrent(t *testing.T, db *sql.DB) {
	const (
		writers      = 8
		perWriter    = 2500
		keysPerWrite = 25
		claimers     = 3
		shards       = 16
	)
	ctx := ctxT(t)
	if err := s.Dialect.EnsureShards(ctx, db, shards); err != nil {
		t.Fatal(err)
	}
	type entry struct {
		key string
		seq int
	}
	var (
		mu         sync.Mutex
		committed  = map[string]entry{} // message id -> key, seq
		rolledBack = map[string]bool{}
		acked      = map[string]int{}
		lastSeq    = map[string]int{}
		owner      = map[int]string{}
		writersOn  atomic.Int32
		retried    atomic.Int64
	)
	writersOn.Store(writers)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer writersOn.Add(-1)
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			seq := map[string]int{}
			for sent := 0; sent < perWriter; {
				n := min(1+rng.IntN(5), perWriter-sent)
				abort := rng.IntN(10) == 0
				var batch []dialect.InsertRow
				var ents []entry
				next := map[string]int{}
				for i := 0; i < n; i++ {
					key := fmt.Sprintf("w%d-k%d", w, rng.IntN(keysPerWrite))
					id := fmt.Sprintf("w%d-%d", w, sent+i)
					e := entry{key: key}
					if !abort {
						next[key]++
						e.seq = seq[key] + next[key]
					}
					m := msg(id, key, key)
					m.Shard = int(uint64(m.KeyHash) % shards)
					batch = append(batch, m)
					ents = append(ents, e)
				}
				// Record the outcome before the commit, so that a claimer
				// that reads the rows right after it can check them.
				mu.Lock()
				for i, m := range batch {
					if abort {
						rolledBack[m.MessageID] = true
					} else {
						committed[m.MessageID] = ents[i]
					}
				}
				mu.Unlock()
				if err := s.writeTx(ctx, db, batch, abort); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				for k, v := range next {
					seq[k] += v
				}
				sent += n
			}
		}()
	}
	var failed atomic.Bool
	fail := func(format string, args ...any) {
		failed.Store(true)
		t.Errorf(format, args...)
	}
	var cwg sync.WaitGroup
	for c := 0; c < claimers; c++ {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			me := fmt.Sprintf("claimer-%d", c)
			rng := rand.New(rand.NewPCG(uint64(c), 99))
			var held []dialect.Lease
			drop := func(ls []dialect.Lease) {
				mu.Lock()
				for _, l := range ls {
					delete(owner, l.Shard)
				}
				mu.Unlock()
				if err := s.Dialect.Release(ctx, db, me, ls); err != nil && !isRetriableContention(err) {
					fail("%s: Release: %v", me, err)
				}
			}
			defer func() { drop(held) }()
			for round := 0; !failed.Load(); round++ {
				live, err := s.Dialect.Heartbeat(ctx, db, me, 10*time.Second)
				if err != nil {
					if isRetriableContention(err) {
						continue
					}
					fail("%s: Heartbeat: %v", me, err)
					return
				}
				share := (shards + live - 1) / live
				if len(held) > share { // hand back above the fair share
					drop(held[share:])
					held = held[:share]
				}
				if round%40 == 39 && len(held) > 0 { // rotate: hand one shard over
					drop(held[:1])
					held = held[1:]
				}
				if len(held) < share {
					got, err := s.Dialect.Acquire(ctx, db, me, share-len(held), time.Minute)
					if err != nil && !isRetriableContention(err) {
						fail("%s: Acquire: %v", me, err)
						return
					}
					mu.Lock()
					for _, l := range got {
						if o, ok := owner[l.Shard]; ok {
							fail("shard %d acquired by %s while %s holds it", l.Shard, me, o)
						}
						owner[l.Shard] = me
					}
					mu.Unlock()
					held = append(held, got...)
				}
				if len(held) == 0 {
					time.Sleep(2 * time.Millisecond)
					continue
				}
				sh := make([]int, len(held))
				for i, l := range held {
					sh[i] = l.Shard
				}
				recs, err := s.Dialect.ReadBatch(ctx, db, dialect.ReadRequest{Shards: sh, Limit: 200})
				if err != nil {
					fail("%s: ReadBatch: %v", me, err)
					return
				}
				if len(recs) == 0 {
					if writersOn.Load() == 0 {
						st, err := s.Dialect.Stats(ctx, db)
						if err == nil && st.Pending == 0 {
							return
						}
					}
					time.Sleep(time.Millisecond)
					continue
				}
				// Fail one message in twenty, as a relay whose publish
				// failed: it is retried shortly, and the later messages of
				// its key in this batch are left alone (they must wait
				// behind it). The rest is acked.
				var idList []int64
				var retries []dialect.Retry
				failedKeys := map[string]bool{}
				var ackedRecs []dialect.Row
				for _, r := range recs {
					k := string(r.Key)
					if failedKeys[k] {
						continue
					}
					if rng.IntN(20) == 0 {
						failedKeys[k] = true
						retries = append(retries, dialect.Retry{RowID: r.RowID, Delay: 3 * time.Millisecond, Err: "injected"})
						continue
					}
					idList = append(idList, r.RowID)
					ackedRecs = append(ackedRecs, r)
				}
				recs = ackedRecs
				var n int64
				for {
					n, err = s.Dialect.Ack(ctx, db, idList)
					if err == nil || !isRetriableContention(err) {
						break
					}
				}
				if err != nil {
					fail("%s: Ack: %v", me, err)
					return
				}
				if n != int64(len(recs)) {
					fail("%s: Ack deleted %d of %d rows it read: another claimer acked them", me, n, len(recs))
				}
				for len(retries) > 0 {
					err = s.Dialect.Retry(ctx, db, retries)
					if err == nil {
						retried.Add(int64(len(retries)))
						break
					}
					if !isRetriableContention(err) {
						fail("%s: Retry: %v", me, err)
						return
					}
				}
				mu.Lock()
				for _, r := range recs {
					acked[r.MessageID]++
					if rolledBack[r.MessageID] {
						fail("rolled-back message %s was read", r.MessageID)
					}
					e, ok := committed[r.MessageID]
					if !ok {
						fail("read %s, which no writer committed", r.MessageID)
						continue
					}
					if e.seq != lastSeq[e.key]+1 {
						fail("key %s: seq %d acked after %d", e.key, e.seq, lastSeq[e.key])
					}
					lastSeq[e.key] = e.seq
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	cwg.Wait()
	if failed.Load() {
		return
	}
	// Order was checked live; check completeness and uniqueness.
	total := 0
	for id, e := range committed {
		total++
		if acked[id] != 1 {
			t.Errorf("committed message %s (key %s seq %d) acked %d times, want 1", id, e.key, e.seq, acked[id])
		}
	}
	for id := range rolledBack {
		if acked[id] != 0 {
			t.Errorf("rolled-back message %s acked", id)
		}
	}
	if len(acked) != total {
		t.Errorf("%d distinct messages acked, %d committed", len(acked), total)
	}
	if total+len(rolledBack) != writers*perWriter {
		t.Errorf("%d committed + %d rolled back, want %d", total, len(rolledBack), writers*perWriter)
	}
	if retried.Load() == 0 {
		t.Error("no message was retried: the test did not exercise hold-back")
	}
	t.Logf("%s: %d committed, %d rolled back, %d retries; all acked exactly once in per-key order",
		s.Dialect.Name(), total, len(rolledBack), retried.Load())
}

// writeTx inserts batch in one transaction and commits or rolls back,
// retrying whole transactions that lose to lock contention.
func (s suite) writeTx(ctx context.Context, db *sql.DB, batch []dialect.InsertRow, abort bool) error {
	for attempt := 0; ; attempt++ {
		tx, err := db.BeginTx(ctx, nil)
		if err == nil {
			err = s.Dialect.Insert(ctx, tx, batch)
			if err == nil && abort {
				return tx.Rollback()
			}
			if err == nil {
				err = tx.Commit()
				if err == nil {
					return nil
				}
			} else {
				tx.Rollback()
			}
		}
		if !isRetriableContention(err) || attempt > 20 {
			return err
		}
	}
}
