package outboxtest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/internal/faketb"
	"github.com/outboxrelay/outbox/outboxtest"
)

func ExampleRecorder() {
	// placeOrder is application code. It depends on outbox.Enqueuer, not on
	// *outbox.Outbox, so that a test can hand it a Recorder.
	placeOrder := func(ctx context.Context, ob outbox.Enqueuer, tx outbox.Execer, id string, total int) error {
		// ... INSERT INTO orders through tx ...
		return ob.Enqueue(ctx, tx, outbox.Message{
			Topic:   "orders",
			Key:     []byte(id),
			Value:   fmt.Appendf(nil, `{"id":%q,"total":%d}`, id, total),
			Headers: []outbox.Header{{Key: "type", Value: []byte("order.placed")}},
		})
	}

	// In a test function:
	t := &faketb.TB{Panic: true} // the test's *testing.T
	rec := &outboxtest.Recorder{}
	if err := placeOrder(context.Background(), rec, outboxtest.NopExecer{}, "o-1", 3); err != nil {
		t.Fatalf("placeOrder: %v", err)
	}
	m := outboxtest.RequireEnqueued(t, rec, outboxtest.Want{
		Topic:   "orders",
		Key:     []byte("o-1"),
		Headers: []outbox.Header{{Key: "type", Value: []byte("order.placed")}},
	})
	outboxtest.RequireEnqueuedCount(t, rec, outboxtest.Want{}, 1)
	fmt.Printf("%s %s\n", m.Topic, m.Value)

	// The Recorder rejects what the real Outbox would.
	err := placeOrder(context.Background(), rec, nil, "o-2", 5)
	fmt.Println(errors.Is(err, outbox.ErrNilExecutor))
	// Output:
	// orders {"id":"o-1","total":3}
	// true
}
