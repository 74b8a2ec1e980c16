package pqnotify_test

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/dialect/pqnotify"
	"github.com/outboxrelay/outbox/outboxtest"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func woken(ch <-chan struct{}, within time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(within):
		return false
	}
}

// arm arms the wake-up of db's schema, as a relay does before it waits,
// and reports whether it was disarmed.
func arm(t *testing.T, db *dbtest.DB) bool {
	t.Helper()
	disarmed, err := db.Dialect.(dialect.WakeArmer).ArmWake(context.Background(), db.DB)
	if err != nil {
		t.Fatal(err)
	}
	return disarmed
}

// A commit wakes the listener of its schema once it was armed; a rollback,
// a commit in another schema, or a commit while disarmed does not.
func TestWakeOnCommitOnly(t *testing.T) {
	db := dbtest.Open(t, "postgres")
	other := dbtest.Open(t, "postgres")
	ctx := context.Background()
	l, err := pqnotify.New(ctx, db.DSN, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ob, _ := outbox.New(outbox.Config{Dialect: db.Dialect})
	msg := outbox.Message{Topic: "t", Value: []byte("v")}

	// A fresh schema notifies on every commit, as before the flag existed
	// (relays of earlier versions never arm it), until a relay arms it.
	for i := range 2 {
		if err := ob.Enqueue(ctx, db.DB, msg); err != nil {
			t.Fatal(err)
		}
		if !woken(l.Wake(), 5*time.Second) {
			t.Fatalf("commit %d in a schema no relay armed yet did not wake the listener", i+1)
		}
	}
	if !arm(t, db) {
		t.Fatal("the first arming did not report that the flag was not armed")
	}
	tx, _ := db.BeginTx(ctx, nil)
	if err := ob.Enqueue(ctx, tx, msg); err != nil {
		t.Fatal(err)
	}
	if woken(l.Wake(), 300*time.Millisecond) {
		t.Fatal("woken before the commit")
	}
	tx.Rollback()
	if woken(l.Wake(), 300*time.Millisecond) {
		t.Fatal("woken by a rollback")
	}
	// The rolled-back insert disarmed the wake-up (the flag is not
	// transactional): arming reports it, so a relay reads again.
	if !arm(t, db) {
		t.Fatal("arming after an insert did not report the wake-up disarmed")
	}
	arm(t, other)
	if err := ob.Enqueue(ctx, other.DB, msg); err != nil {
		t.Fatal(err)
	}
	if woken(l.Wake(), 300*time.Millisecond) {
		t.Fatal("woken by a commit in another schema")
	}
	if err := ob.Enqueue(ctx, db.DB, msg); err != nil {
		t.Fatal(err)
	}
	if !woken(l.Wake(), 5*time.Second) {
		t.Fatal("not woken by a commit")
	}
	// Disarmed by that commit: the next ones do not notify (busy writers do
	// not serialize on NOTIFY) until a relay arms again.
	if err := ob.Enqueue(ctx, db.DB, msg); err != nil {
		t.Fatal(err)
	}
	if woken(l.Wake(), 300*time.Millisecond) {
		t.Fatal("woken by a commit while disarmed")
	}
	if !arm(t, db) {
		t.Fatal("arming after inserts did not report the wake-up disarmed")
	}
	if arm(t, db) {
		t.Fatal("arming twice reported the wake-up disarmed")
	}
	if err := ob.Enqueue(ctx, db.DB, msg); err != nil {
		t.Fatal(err)
	}
	if !woken(l.Wake(), 5*time.Second) {
		t.Fatal("not woken by a commit after arming again")
	}
}

// runListening runs a relay woken by a pqnotify listener, polling once a
// minute, until the test ends.
func runListening(t *testing.T, db *dbtest.DB, pub outbox.Publisher, minPoll time.Duration) *outbox.Relay {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l, err := pqnotify.New(ctx, db.DSN, quiet())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	relay, err := outbox.NewRelay(db.DB, pub, outbox.RelayConfig{
		Dialect: db.Dialect, PollInterval: time.Minute, MinPollInterval: minPoll,
		Wake: l.Wake(), Logger: quiet(),
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		l.Close()
	})
	return relay
}

// With the listener, a relay whose poll has backed off to a minute still
// publishes at once.
func TestRelayWokenByNotify(t *testing.T) {
	db := dbtest.Open(t, "postgres")
	ctx := context.Background()
	pub := outboxtest.NewFakePublisher()
	relay := runListening(t, db, pub, time.Minute)
	// Let the relay take its shards and go idle.
	deadline := time.Now().Add(10 * time.Second)
	for relay.Stats().Shards < outbox.DefaultNumShards && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	ob, _ := outbox.New(outbox.Config{Dialect: db.Dialect})
	if err := ob.Enqueue(ctx, db.DB, outbox.Message{Topic: "t", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for len(pub.Published()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the relay was not woken by the commit (it polls once a minute)")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An insert that ran while the wake-up was disarmed (another transaction's
// insert disarmed it and will notify) commits after the relay was woken,
// read, and armed again: its commit does not notify, and the relay, which
// polls once a minute, must still publish it promptly. The arming that
// found the flag disarmed names the transactions then inserting; the relay
// polls until they have ended.
func TestRelayNotLostBehindADisarmedWake(t *testing.T) {
	db := dbtest.Open(t, "postgres")
	ctx := context.Background()
	pub := outboxtest.NewFakePublisher()
	var mu sync.Mutex
	published := map[string]time.Time{}
	pub.SetHook(func(r outbox.Record) error {
		mu.Lock()
		defer mu.Unlock()
		published[r.MessageID] = time.Now()
		return nil
	})
	runListening(t, db, pub, 5*time.Millisecond)
	flag := func() int64 {
		var v int64
		if err := db.QueryRow("SELECT last_value FROM outbox_wake").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	deadline := time.Now().Add(10 * time.Second)
	for flag() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the relay did not arm the wake-up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // the relay's idle wait has grown long

	ob, _ := outbox.New(outbox.Config{Dialect: db.Dialect})
	begin := func(id string) *sql.Tx {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := ob.Enqueue(ctx, tx, outbox.Message{ID: id, Topic: "t", Value: []byte(id)}); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	t1 := begin("first")  // disarms the flag; notifies at its commit
	t2 := begin("second") // finds it disarmed: will not notify
	if err := t1.Commit(); err != nil {
		t.Fatal(err)
	}
	at := func(id string) (time.Time, bool) {
		mu.Lock()
		defer mu.Unlock()
		p, ok := published[id]
		return p, ok
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		if _, ok := at("first"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first message was not published: its commit did not wake the relay")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // the relay has read, armed again, and its idle wait has grown
	if err := t2.Commit(); err != nil {
		t.Fatal(err)
	}
	committed := time.Now()
	deadline = committed.Add(20 * time.Second)
	for {
		if p, ok := at("second"); ok {
			t.Logf("the second message went out %s after its commit", p.Sub(committed).Round(time.Millisecond))
			if d := p.Sub(committed); d > time.Second {
				t.Errorf("the second message went out %s after its commit: the relay waited for its poll", d)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the second message was not published within 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A role that may only insert into the outbox enqueues whatever the state of
// the flag: the trigger's WHEN reads the flag as that role, and the trigger
// function, which sets it, runs as the migrations' owner.
func TestEnqueueAsAnInsertOnlyRole(t *testing.T) {
	db := dbtest.Open(t, "postgres")
	ctx := context.Background()
	var schema string
	if err := db.QueryRow("SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	role := schema + "_writer"
	for _, q := range []string{
		"CREATE ROLE " + role,
		"GRANT USAGE ON SCHEMA " + schema + " TO " + role,
		"GRANT INSERT ON " + schema + ".outbox_messages TO " + role,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		db.Exec("REVOKE ALL ON " + schema + ".outbox_messages FROM " + role)
		db.Exec("REVOKE ALL ON SCHEMA " + schema + " FROM " + role)
		db.Exec("DROP ROLE " + role)
	})
	ob, _ := outbox.New(outbox.Config{Dialect: db.Dialect})
	for _, flag := range []int{2, 1, 0} {
		if _, err := db.Exec("SELECT setval('outbox_wake', $1)", flag); err != nil {
			t.Fatal(err)
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec("SET LOCAL ROLE " + role); err != nil {
			t.Fatal(err)
		}
		if err := ob.Enqueue(ctx, tx, outbox.Message{Topic: "t", Value: []byte("v")}); err != nil {
			tx.Rollback()
			t.Fatalf("flag %d: Enqueue as a role that may only insert: %v", flag, err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}
