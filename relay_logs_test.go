package outbox_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/internal/proctest"
	"github.com/outboxrelay/outbox/outboxtest"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// Every log line about a message names the relay, the shard, the topic and
// the message's outbox-id (message_id), and none shows a payload.
func TestRelayLogLinesAboutMessages(t *testing.T) {
	const marker = "PAYLOAD-d41d8cd98f00"
	db := dbtest.Open(t, "sqlite")
	ob, err := outbox.New(outbox.Config{Dialect: db.Dialect, NumShards: testShards})
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.Enqueue(context.Background(), db.DB,
		outbox.Message{Topic: "flaky", Key: []byte("k"), Value: []byte(marker)},
		outbox.Message{Topic: "poison", Key: []byte("k2"), Value: []byte(marker)}); err != nil {
		t.Fatal(err)
	}
	var out proctest.Buffer
	pub := outboxtest.NewFakePublisher()
	var mu sync.Mutex
	failed := false
	pub.SetHook(func(r outbox.Record) error {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Topic == "poison":
			return outboxtest.ErrPermanent
		case !failed:
			failed = true
			return outboxtest.ErrRetriable
		}
		return nil
	})
	cfg := fastConfig(db)
	cfg.ID = "relay-logs"
	cfg.Logger = slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	run := start(t, db.DB, pub, cfg)
	waitFor(t, 20*time.Second, "the outbox to drain", func() bool { return pending(t, db) == 0 })
	run.stop(t)

	logs := out.String()
	if strings.Contains(logs, marker) {
		t.Errorf("the logs show a payload:\n%s", logs)
	}
	about := 0
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		keys := []string{"relay", "shard", "topic"}
		if _, ok := m["first_message_id"]; ok {
			keys = []string{"relay", "topic"} // the retries of a topic in a batch, summed up
		} else if _, ok := m["message_id"]; !ok {
			continue
		}
		about++
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Errorf("a line about a message has no %s: %s", k, line)
			}
		}
		if m["relay"] != "relay-logs" {
			t.Errorf("relay = %v, want relay-logs: %s", m["relay"], line)
		}
	}
	if about < 2 {
		t.Errorf("%d lines about messages, want the retry and the dead letter:\n%s", about, logs)
	}
}
