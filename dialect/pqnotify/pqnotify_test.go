package pqnotify_test

import (
	"context"
	"io"
	"log/slog"
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

	// A fresh schema is armed: the first insert notifies.
	if arm(t, db) {
		t.Fatal("a fresh schema's wake-up was disarmed")
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

// With the listener, a relay whose poll has backed off to a minute still
// publishes at once.
func TestRelayWokenByNotify(t *testing.T) {
	db := dbtest.Open(t, "postgres")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := pqnotify.New(ctx, db.DSN, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pub := outboxtest.NewFakePublisher()
	relay, err := outbox.NewRelay(db.DB, pub, outbox.RelayConfig{
		Dialect: db.Dialect, PollInterval: time.Minute, MinPollInterval: time.Minute,
		Wake: l.Wake(), Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	defer func() { cancel(); <-done }()
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
