package dialect_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

func TestReadBacklog(t *testing.T) {
	dbtest.RunDB(t, func(t *testing.T, db *dbtest.DB) {
		ctx := context.Background()
		d := db.Dialect
		b, err := dialect.ReadBacklog(ctx, d, db.DB, 3)
		if err != nil {
			t.Fatal(err)
		}
		if b != (dialect.Backlog{}) {
			t.Fatalf("empty outbox: got %+v, want zero", b)
		}
		rows := []dialect.InsertRow{
			{MessageID: "delayed", Topic: "t", Value: []byte("v"), Delay: time.Hour},
			{MessageID: "due1", Topic: "t", Value: []byte("v")},
			{MessageID: "due2", Topic: "t", Value: []byte("v")},
			{MessageID: "due3", Topic: "t", Value: []byte("v")},
		}
		if err := d.Insert(ctx, db.DB, rows); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // let the due rows age on the database clock
		b, err = dialect.ReadBacklog(ctx, d, db.DB, 3)
		if err != nil {
			t.Fatal(err)
		}
		if b.Pending != 3 || !b.PendingCapped {
			t.Errorf("pending = %d (capped %v), want 3 capped at the limit", b.Pending, b.PendingCapped)
		}
		if b.OldestDueAge <= 0 || b.OldestDueAge > time.Minute {
			t.Errorf("oldest due age = %s, want a positive age below a minute", b.OldestDueAge)
		}
		if b.DeadLetters != 0 || b.DeadLettersCapped {
			t.Errorf("dead letters = %d, want 0", b.DeadLetters)
		}

		// Only the delayed message left: nothing is due.
		recs, err := d.ReadBatch(ctx, db.DB, dialect.ReadRequest{Shards: []int{0}, Limit: 10})
		if err != nil || len(recs) != 3 {
			t.Fatalf("ReadBatch: %d rows, %v", len(recs), err)
		}
		if err := d.DeadLetter(ctx, db.DB, []dialect.Failure{{RowID: recs[0].RowID, Err: "boom"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Ack(ctx, db.DB, []int64{recs[1].RowID, recs[2].RowID}); err != nil {
			t.Fatal(err)
		}
		b, err = dialect.ReadBacklog(ctx, d, db.DB, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := dialect.Backlog{Pending: 1, DeadLetters: 1}
		if b != want {
			t.Errorf("got %+v, want %+v", b, want)
		}
	})
}

func TestNow(t *testing.T) {
	dbtest.RunDB(t, func(t *testing.T, db *dbtest.DB) {
		now, err := dialect.Now(context.Background(), db.Dialect, db.DB)
		if err != nil {
			t.Fatal(err)
		}
		// The databases run on this machine: their clock is ours.
		if d := time.Since(now); d < -time.Minute || d > time.Minute {
			t.Errorf("database now %s is %s away from the local clock", now, d)
		}
	})
}

type otherDialect struct{ dialect.Dialect }

func TestBacklogOtherDialect(t *testing.T) {
	d := otherDialect{dialect.SQLite()}
	if _, err := dialect.ReadBacklog(context.Background(), d, nil, 0); !errors.Is(err, dialect.ErrNoBacklog) {
		t.Errorf("ReadBacklog: %v, want ErrNoBacklog", err)
	}
	if _, err := dialect.Now(context.Background(), d, nil); !errors.Is(err, dialect.ErrNoBacklog) {
		t.Errorf("Now: %v, want ErrNoBacklog", err)
	}
}
