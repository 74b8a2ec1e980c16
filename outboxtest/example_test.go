package outboxtest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/outboxtest"
)

// exampleT stands in for the *testing.T that a real test gets and an
// example does not. It implements only what the helpers call.
type exampleT struct {
	testing.TB // nil: calling any other method panics
	cleanups   []func()
}

func (t *exampleT) Helper() {}

func (t *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

func (t *exampleT) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }

func (t *exampleT) TempDir() string {
	dir, err := os.MkdirTemp("", "outboxtest-example")
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// finish runs the cleanups, as the testing package does when a test ends.
func (t *exampleT) finish() {
	for _, f := range slices.Backward(t.cleanups) {
		f()
	}
}

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
	t := &exampleT{} // the test's *testing.T
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

func ExampleNewSQLite() {
	// In a test function, pass the test's *testing.T.
	t := &exampleT{}
	defer t.finish()
	db := outboxtest.NewSQLite(t)
	ctx := context.Background()

	// placeOrder writes the business change and its message in one
	// transaction; fail makes the business change fail after the enqueue.
	placeOrder := func(id string, fail bool) error {
		tx, err := db.DB.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		// ... INSERT INTO orders through tx ...
		if err := db.Outbox.Enqueue(ctx, tx, outbox.Message{Topic: "orders", Key: []byte(id)}); err != nil {
			return err
		}
		if fail {
			return errors.New("out of stock")
		}
		return tx.Commit()
	}

	fmt.Println(placeOrder("o-1", true))
	db.RequireNoMessages(t) // rolled back with the business change

	if err := placeOrder("o-2", false); err != nil {
		t.Fatalf("placeOrder: %v", err)
	}
	for _, m := range db.Messages(t) {
		fmt.Printf("%s %s\n", m.Topic, m.Key)
	}
	// Output:
	// out of stock
	// orders o-2
}
