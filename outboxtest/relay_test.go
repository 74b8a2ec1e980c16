package outboxtest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/faketb"
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

func TestRequireOnlyPublished(t *testing.T) {
	pub := outboxtest.NewFakePublisher()
	recs := []outbox.Record{{MessageID: "m-1", Topic: "orders", Key: []byte("o-1"), Value: []byte("v")}}
	got := outboxtest.RequireOnlyPublished(t, pub, recs, outboxtest.Want{Topic: "orders", Key: []byte("o-1"), Value: []byte("v")})
	if got.MessageID != "m-1" {
		t.Errorf("returned %+v", got)
	}
	for _, tc := range []struct {
		name string
		recs []outbox.Record
	}{
		{"none", nil},
		{"two", append(recs, recs...)},
		{"other key", []outbox.Record{{Topic: "orders", Key: []byte("o-2"), Value: []byte("v")}}},
	} {
		tb := &faketb.TB{}
		outboxtest.RequireOnlyPublished(tb, pub, tc.recs, outboxtest.Want{Topic: "orders", Key: []byte("o-1")})
		if len(tb.Fatals) != 1 || !strings.HasPrefix(tb.Fatals[0], "outboxtest: expected exactly one published record") {
			t.Errorf("%s: Fatalf calls %q", tc.name, tb.Fatals)
		}
	}
}
