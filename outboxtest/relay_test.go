package outboxtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/outboxtest"
	"github.com/outboxrelay/outbox/outboxtest/sqlitetest"
)

func TestStartRelayWaitDrained(t *testing.T) {
	db := sqlitetest.New(t)
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		if err := db.Outbox.Enqueue(ctx, db.DB, outbox.Message{ID: id, Topic: "orders", Key: []byte(id)}); err != nil {
			t.Fatal(err)
		}
	}
	pub := outboxtest.NewFakePublisher()
	outboxtest.StartRelay(t, db.DB, pub, outbox.RelayConfig{Dialect: dialect.SQLite(), PollInterval: 20 * time.Millisecond})
	recs := outboxtest.WaitDrained(t, db.DB, pub, 15*time.Second)
	if len(recs) != 2 {
		t.Fatalf("published %d records, want 2", len(recs))
	}
}
