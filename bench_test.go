package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/plainsql"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// Benchmark shape: batches of this many messages per transaction, values
// of benchValueSize bytes, keys drawn from benchKeys distinct keys.
var benchBatchSizes = []int{1, 100}

const (
	benchValueSize = 256
	benchKeys      = 1000
	// benchCleanEvery empties the outbox table (outside the timer) after
	// this many rows, so it does not grow without bound.
	benchCleanEvery = 10_000
	benchShards     = outbox.DefaultNumShards
)

// benchMessages returns n messages cycling through the keys, each with its
// own value.
func benchMessages(n int) []outbox.Message {
	rng := rand.New(rand.NewPCG(1, 2))
	msgs := make([]outbox.Message, n)
	for i := range msgs {
		value := make([]byte, benchValueSize)
		for j := range value {
			value[j] = byte(rng.UintN(256))
		}
		msgs[i] = outbox.Message{
			Topic: "bench.orders",
			Key:   []byte(fmt.Sprintf("customer-%04d", rng.IntN(benchKeys))),
			Value: value,
		}
	}
	return msgs
}

func benchClean(b *testing.B, db *dbtest.DB) {
	b.Helper()
	if _, err := db.ExecContext(context.Background(), "DELETE FROM "+dialect.TableMessages); err != nil {
		b.Fatalf("clean: %v", err)
	}
}

// benchTx runs b.N transactions of size messages each through write, and
// reports messages per second.
func benchTx(b *testing.B, db *dbtest.DB, size int, write func(ctx context.Context, tx *sql.Tx, batch []outbox.Message) error) {
	ctx := context.Background()
	// A pool of distinct batches, reused round robin.
	pool := benchMessages(size * 64)
	benchClean(b, db)
	rows := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if rows >= benchCleanEvery {
			b.StopTimer()
			benchClean(b, db)
			rows = 0
			b.StartTimer()
		}
		off := (i % 64) * size
		batch := pool[off : off+size]
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := write(ctx, tx, batch); err != nil {
			_ = tx.Rollback()
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		rows += size
	}
	b.StopTimer()
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N*size)/s, "msgs/s")
	}
}

// benchDialects runs fn for each dialect and batch size, as
// <dialect>/<batch size>, on one database per dialect.
func benchDialects(b *testing.B, fn func(b *testing.B, db *dbtest.DB, size int)) {
	for _, name := range dbtest.Names {
		b.Run(string(name), func(b *testing.B) {
			db := dbtest.Open(b, name)
			for _, size := range benchBatchSizes {
				b.Run(strconv.Itoa(size), func(b *testing.B) {
					fn(b, db, size)
				})
			}
		})
	}
}

func BenchmarkEnqueue(b *testing.B) {
	benchDialects(b, func(b *testing.B, db *dbtest.DB, size int) {
		ob, err := outbox.New(outbox.Config{Dialect: db.Dialect, NumShards: benchShards})
		if err != nil {
			b.Fatal(err)
		}
		benchTx(b, db, size, func(ctx context.Context, tx *sql.Tx, batch []outbox.Message) error {
			return ob.Enqueue(ctx, tx, batch...)
		})
	})
}

func BenchmarkPlainInsert(b *testing.B) {
	benchDialects(b, func(b *testing.B, db *dbtest.DB, size int) {
		name := db.Dialect.Name()
		query := plainsql.Insert(name, size)
		args := make([]any, 0, 7*size)
		benchTx(b, db, size, func(ctx context.Context, tx *sql.Tx, batch []outbox.Message) error {
			args = args[:0]
			for _, m := range batch {
				h := outbox.KeyHash(m.Key)
				args = append(args, outbox.NewMessageID(), m.Topic, m.Key, int64(h), m.Value, nil,
					int(h%benchShards))
			}
			_, err := tx.ExecContext(ctx, query, args...)
			return err
		})
	})
}
