package orders_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/examples/gorm/orders"
	"github.com/outboxrelay/outbox/outboxtest"
)

// startRelay runs a relay on a pool of its own, publishing to a fake, until
// the test ends.
func startRelay(t *testing.T, tdb testDB) *outboxtest.FakePublisher {
	t.Helper()
	pub := outboxtest.NewFakePublisher()
	relay, err := outbox.NewRelay(tdb.Open(t), pub, outbox.RelayConfig{
		Dialect:      tdb.Dialect,
		PollInterval: 20 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay.Run: %v", err)
		}
	})
	return pub
}

// waitDrained waits until the relay has published a record with key and
// the outbox table is empty, and returns everything published. A message
// that should not exist (of a rolled-back transaction) is then either
// among the records or still pending, and the test sees it.
func waitDrained(t *testing.T, db *sql.DB, pub *outboxtest.FakePublisher, key string) []outbox.Record {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var pending int
		if err := db.QueryRow("SELECT COUNT(*) FROM " + dialect.TableMessages).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		recs := pub.Published()
		for _, r := range recs {
			if string(r.Key) == key && pending == 0 {
				return recs
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15s: %d published, %d pending; want the event of %s published and nothing pending", len(recs), pending, key)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// requireOnlyEvent checks that recs is exactly the order.created event of
// the given order.
func requireOnlyEvent(t *testing.T, pub *outboxtest.FakePublisher, recs []outbox.Record, want orders.OrderCreated) {
	t.Helper()
	if len(recs) != 1 {
		for _, r := range recs {
			t.Logf("published: topic=%s key=%s value=%s", r.Topic, r.Key, r.Value)
		}
		t.Fatalf("published %d records, want exactly 1: the rolled-back order must emit nothing", len(recs))
	}
	r := recs[0]
	if r.Topic != orders.TopicOrderCreated || string(r.Key) != want.OrderID {
		t.Errorf("published topic=%s key=%s, want topic=%s key=%s", r.Topic, r.Key, orders.TopicOrderCreated, want.OrderID)
	}
	var got orders.OrderCreated
	if err := json.Unmarshal(r.Value, &got); err != nil {
		t.Fatalf("value %s: %v", r.Value, err)
	}
	if got != want {
		t.Errorf("value = %+v, want %+v", got, want)
	}
	if len(r.Headers) != 1 || r.Headers[0].Key != "content-type" || string(r.Headers[0].Value) != "application/json" {
		t.Errorf("headers = %v, want content-type: application/json", r.Headers)
	}
	if v := pub.Violations(); len(v) > 0 {
		t.Errorf("publisher contract violations: %v", v)
	}
}
