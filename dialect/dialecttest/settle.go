package dialecttest

import (
	"database/sql"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/outboxrelay/outbox/dialect"
)

func (s suite) ack(t *testing.T, db *sql.DB) {
	s.insert(t, db, msg("a", "k", "1"), msg("b", "k", "2"), msg("c", "j", "3"))
	recs := s.read(t, db, allShards(), 10)
	ctx := ctxT(t)
	n, err := s.Dialect.Ack(ctx, db, []int64{recs[0].RowID, recs[1].RowID})
	if err != nil || n != 2 {
		t.Fatalf("Ack = %d, %v; want 2, nil", n, err)
	}
	n, err = s.Dialect.Ack(ctx, db, []int64{recs[0].RowID, recs[1].RowID})
	if err != nil || n != 0 {
		t.Fatalf("second Ack = %d, %v; want 0, nil", n, err)
	}
	if got := ids(s.read(t, db, allShards(), 10)); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("after ack read %v, want [c]", got)
	}
	if n, err := s.Dialect.Ack(ctx, db, nil); err != nil || n != 0 {
		t.Fatalf("Ack(nil) = %d, %v", n, err)
	}
}

func (s suite) deadLetterRow(t *testing.T, db *sql.DB, messageID string) (count, attempts int, lastErr string, payload []byte) {
	t.Helper()
	q := "SELECT attempts, last_error, payload FROM " + dialect.TableDeadLetters + " WHERE message_id = 'X'"
	rows, err := db.QueryContext(ctxT(t), strings.Replace(q, "X", messageID, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		count++
		var le sql.NullString
		if err := rows.Scan(&attempts, &le, &payload); err != nil {
			t.Fatal(err)
		}
		lastErr = le.String
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return count, attempts, lastErr, payload
}

func (s suite) deadLetter(t *testing.T, db *sql.DB) {
	s.insert(t, db, onShard("poison", "p", 1), onShard("fine", "f", 1))
	recs := s.read(t, db, []int{1}, 10)
	ctx := ctxT(t)
	if err := s.Dialect.Retry(ctx, db, []dialect.Retry{{RowID: recs[0].RowID, Err: "first"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Dialect.DeadLetter(ctx, db, []dialect.Failure{{RowID: recs[0].RowID, Err: "message too large"}}); err != nil {
		t.Fatal(err)
	}
	if got := ids(s.read(t, db, []int{1}, 10)); !slices.Equal(got, []string{"fine"}) {
		t.Fatalf("after dead-lettering read %v, want [fine]", got)
	}
	count, attempts, lastErr, payload := s.deadLetterRow(t, db, "poison")
	if count != 1 || attempts != 2 || lastErr != "message too large" || string(payload) != "poison" {
		t.Fatalf("dead letter: count=%d attempts=%d last_error=%q payload=%q; want 1, 2, %q, %q",
			count, attempts, lastErr, payload, "message too large", "poison")
	}
	st, err := s.Dialect.Stats(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 1 || st.DeadLetters != 1 {
		t.Fatalf("Stats = %+v, want Pending 1, DeadLetters 1", st)
	}
	// A row already gone is skipped, not an error.
	if err := s.Dialect.DeadLetter(ctx, db, []dialect.Failure{{RowID: recs[0].RowID, Err: "again"}}); err != nil {
		t.Fatalf("dead-lettering a row already gone: %v", err)
	}
	if count, _, _, _ := s.deadLetterRow(t, db, "poison"); count != 1 {
		t.Fatalf("%d dead letters after a second DeadLetter of a gone row, want 1", count)
	}
}

func (s suite) deadLetterRace(t *testing.T, db *sql.DB) {
	s.insert(t, db, onShard("p1", "p", 4), onShard("p2", "p", 4))
	recs := s.read(t, db, []int{4}, 10)
	failures := []dialect.Failure{{RowID: recs[0].RowID, Err: "e"}, {RowID: recs[1].RowID, Err: "e"}}
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Dialect.DeadLetter(ctx, db, failures)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !isRetriableContention(err) {
			t.Errorf("concurrent DeadLetter: %v", err)
		}
	}
	for _, id := range []string{"p1", "p2"} {
		if count, _, _, _ := s.deadLetterRow(t, db, id); count != 1 {
			t.Errorf("%s dead-lettered %d times by 6 racing relays, want once", id, count)
		}
	}
}
