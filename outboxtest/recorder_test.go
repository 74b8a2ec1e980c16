package outboxtest_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/faketb"
	"github.com/outboxrelay/outbox/outboxtest"
)

// Enqueue counts a framing allowance against MaxMessageBytes: 256 bytes per
// message and 10 per header (see outbox.Config.MaxMessageBytes).
const recordOverhead, headerOverhead = 256, 10

var uuidV7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// fakeTB records what the helpers report instead of failing the test.
type fakeTB = faketb.TB

// TestValidationParity runs the same calls through a real Outbox (writing
// through NopExecer, so no database is needed) and through a Recorder with
// the same limit, and checks that both return the same error.
func TestValidationParity(t *testing.T) {
	ok := outbox.Message{Topic: "orders", Key: []byte("k"), Value: []byte("v")}
	tests := []struct {
		name     string
		maxBytes int
		exec     outbox.Execer
		msgs     []outbox.Message
		want     error // nil: accepted
	}{
		{name: "valid", msgs: []outbox.Message{ok, ok}},
		{name: "no messages", msgs: nil},
		{name: "nil executor", exec: nil, msgs: []outbox.Message{ok}, want: outbox.ErrNilExecutor},
		{name: "typed nil executor", exec: (*sql.Tx)(nil), msgs: []outbox.Message{ok}, want: outbox.ErrNilExecutor},
		{name: "nil executor, no messages", exec: nil, want: outbox.ErrNilExecutor},
		{name: "empty topic", msgs: []outbox.Message{{}}, want: outbox.ErrInvalidTopic},
		{name: "bad topic character", msgs: []outbox.Message{{Topic: "orders/eu"}}, want: outbox.ErrInvalidTopic},
		{name: "topic too long", msgs: []outbox.Message{{Topic: strings.Repeat("t", outbox.MaxTopicLength+1)}}, want: outbox.ErrInvalidTopic},
		{name: "second message invalid", msgs: []outbox.Message{ok, {Topic: ".."}}, want: outbox.ErrInvalidTopic},
		{name: "too large", maxBytes: recordOverhead + 10, msgs: []outbox.Message{{Topic: "t", Key: []byte("12345"), Value: []byte("123456")}}, want: outbox.ErrMessageTooLarge},
		{name: "headers count toward size", maxBytes: recordOverhead + headerOverhead + 10, msgs: []outbox.Message{{Topic: "t", Headers: []outbox.Header{{Key: "12345", Value: []byte("123456")}}}}, want: outbox.ErrMessageTooLarge},
		{name: "at the size limit", maxBytes: recordOverhead + 10, msgs: []outbox.Message{{Topic: "t", Key: []byte("12345"), Value: []byte("12345")}}},
		{name: "reserved header", msgs: []outbox.Message{{Topic: "t", Headers: []outbox.Header{{Key: outbox.HeaderID, Value: []byte("x")}}}}, want: outbox.ErrInvalidHeader},
		{name: "empty header name", msgs: []outbox.Message{{Topic: "t", Headers: []outbox.Header{{Value: []byte("x")}}}}, want: outbox.ErrInvalidHeader},
		{name: "ID too long", msgs: []outbox.Message{{Topic: "t", ID: strings.Repeat("i", outbox.MaxIDLength+1)}}, want: outbox.ErrInvalidID},
		{name: "ID with NUL", msgs: []outbox.Message{{Topic: "t", ID: "a\x00b"}}, want: outbox.ErrInvalidID},
		{name: "negative delay", msgs: []outbox.Message{{Topic: "t", Delay: -time.Second}}, want: outbox.ErrInvalidSchedule},
		{name: "delay and available at", msgs: []outbox.Message{{Topic: "t", Delay: time.Second, AvailableAt: time.Now()}}, want: outbox.ErrInvalidSchedule},
		{name: "negative max bytes", maxBytes: -1, msgs: []outbox.Message{ok}, want: outbox.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exec := tt.exec
			if exec == nil && tt.want != outbox.ErrNilExecutor {
				exec = outboxtest.NopExecer{}
			}
			ctx := context.Background()
			ob, realErr := outbox.New(outbox.Config{Dialect: dialect.SQLite(), MaxMessageBytes: tt.maxBytes})
			if realErr == nil {
				realErr = ob.Enqueue(ctx, exec, tt.msgs...)
			}
			rec := &outboxtest.Recorder{MaxMessageBytes: tt.maxBytes}
			err := rec.Enqueue(ctx, exec, tt.msgs...)

			if !errors.Is(realErr, tt.want) || (tt.want == nil) != (realErr == nil) {
				t.Fatalf("real Outbox: got %v, want %v (the test table is wrong)", realErr, tt.want)
			}
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Recorder: got %v, want %v", err, tt.want)
			}
			if err != nil {
				if err.Error() != realErr.Error() {
					t.Errorf("Recorder error %q, real Outbox error %q", err, realErr)
				}
				var realME, me *outbox.MessageError
				if errors.As(realErr, &realME) != errors.As(err, &me) {
					t.Errorf("Recorder error %T, real Outbox error %T", err, realErr)
				}
				if got := rec.Messages(); len(got) != 0 {
					t.Errorf("recorded %d messages after an error, want none", len(got))
				}
				return
			}
			if got := rec.Messages(); len(got) != len(tt.msgs) {
				t.Errorf("recorded %d messages, want %d", len(got), len(tt.msgs))
			}
		})
	}
}

func TestRecorderFillsIDWithoutChangingCaller(t *testing.T) {
	var rec outboxtest.Recorder
	msgs := []outbox.Message{{Topic: "t"}, {Topic: "t", ID: "order-42"}, {Topic: "t"}}
	if err := rec.Enqueue(context.Background(), outboxtest.NopExecer{}, msgs...); err != nil {
		t.Fatal(err)
	}
	if msgs[0].ID != "" || msgs[2].ID != "" {
		t.Errorf("Enqueue changed the caller's messages: IDs %q, %q", msgs[0].ID, msgs[2].ID)
	}
	got := rec.Messages()
	if len(got) != 3 {
		t.Fatalf("recorded %d messages, want 3", len(got))
	}
	for _, i := range []int{0, 2} {
		if !uuidV7.MatchString(got[i].ID) {
			t.Errorf("message %d: ID %q is not a UUIDv7", i, got[i].ID)
		}
	}
	if got[0].ID == got[2].ID {
		t.Errorf("two messages got the same ID %q", got[0].ID)
	}
	if got[1].ID != "order-42" {
		t.Errorf("caller's ID replaced: got %q", got[1].ID)
	}
}

func TestRecorderDeepCopies(t *testing.T) {
	var rec outboxtest.Recorder
	m := outbox.Message{
		Topic:   "t",
		Key:     []byte("key"),
		Value:   []byte("value"),
		Headers: []outbox.Header{{Key: "h", Value: []byte("hv")}},
	}
	if err := rec.Enqueue(context.Background(), outboxtest.NopExecer{}, m); err != nil {
		t.Fatal(err)
	}
	// The caller reuses its buffers...
	m.Key[0], m.Value[0], m.Headers[0].Value[0] = 'X', 'X', 'X'
	m.Headers[0].Key = "changed"
	// ...and the test changes what Messages returned.
	first := rec.Messages()
	first[0].Key[1], first[0].Value[1], first[0].Headers[0].Value[1] = 'Y', 'Y', 'Y'

	got := rec.Messages()[0]
	if string(got.Key) != "key" || string(got.Value) != "value" ||
		got.Headers[0].Key != "h" || string(got.Headers[0].Value) != "hv" {
		t.Errorf("recorded message changed through an alias: %+v", got)
	}
}

func TestRecorderKeepsNilAndEmptyDistinct(t *testing.T) {
	var rec outboxtest.Recorder
	in := []outbox.Message{
		{Topic: "t"},
		{Topic: "t", Key: []byte{}, Value: []byte{}, Headers: []outbox.Header{{Key: "null"}, {Key: "empty", Value: []byte{}}}},
	}
	if err := rec.Enqueue(context.Background(), outboxtest.NopExecer{}, in...); err != nil {
		t.Fatal(err)
	}
	got := rec.Messages()
	if got[0].Key != nil || got[0].Value != nil || got[0].Headers != nil {
		t.Errorf("nil key/value/headers recorded as %#v", got[0])
	}
	if got[1].Key == nil || got[1].Value == nil {
		t.Errorf("empty key/value recorded as nil: %#v", got[1])
	}
	if got[1].Headers[0].Value != nil || got[1].Headers[1].Value == nil {
		t.Errorf("null and empty header values not kept apart: %#v", got[1].Headers)
	}
}

func TestRecorderErr(t *testing.T) {
	errDown := errors.New("database is down")
	rec := &outboxtest.Recorder{Err: errDown}
	ctx := context.Background()
	if err := rec.Enqueue(ctx, outboxtest.NopExecer{}, outbox.Message{Topic: "t"}); !errors.Is(err, errDown) {
		t.Errorf("got %v, want %v", err, errDown)
	}
	// Validation comes first, as in the real Outbox.
	if err := rec.Enqueue(ctx, outboxtest.NopExecer{}, outbox.Message{}); !errors.Is(err, outbox.ErrInvalidTopic) {
		t.Errorf("got %v, want %v", err, outbox.ErrInvalidTopic)
	}
	if n := len(rec.Messages()); n != 0 {
		t.Errorf("recorded %d messages, want none", n)
	}
}

func TestRecorderReset(t *testing.T) {
	var rec outboxtest.Recorder
	ctx := context.Background()
	_ = rec.Enqueue(ctx, outboxtest.NopExecer{}, outbox.Message{Topic: "a"})
	rec.Reset()
	outboxtest.RequireEnqueuedCount(t, &rec, outboxtest.Want{}, 0)
	_ = rec.Enqueue(ctx, outboxtest.NopExecer{}, outbox.Message{Topic: "b"})
	outboxtest.RequireEnqueuedCount(t, &rec, outboxtest.Want{}, 1)
	outboxtest.RequireEnqueued(t, &rec, outboxtest.Want{Topic: "b"})
}

func TestRecorderConcurrent(t *testing.T) {
	const workers, perWorker = 8, 50
	var rec outboxtest.Recorder
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				key := []byte(fmt.Sprintf("w%d", w))
				err := rec.Enqueue(ctx, outboxtest.NopExecer{},
					outbox.Message{Topic: "t", Key: key, Value: []byte{byte(i)}},
					outbox.Message{Topic: "u", Key: key})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	// Readers race with the writers.
	wg.Go(func() {
		for range perWorker {
			_ = rec.Messages()
			outboxtest.RequireNotEnqueued(t, &rec, outboxtest.Want{Topic: "never"})
		}
	})
	wg.Wait()

	outboxtest.RequireEnqueuedCount(t, &rec, outboxtest.Want{}, 2*workers*perWorker)
	outboxtest.RequireEnqueuedCount(t, &rec, outboxtest.Want{Topic: "t", Key: []byte("w3")}, perWorker)
	// The two messages of one call stay adjacent and in order.
	msgs := rec.Messages()
	for i := 0; i < len(msgs); i += 2 {
		if msgs[i].Topic != "t" || msgs[i+1].Topic != "u" || !bytes.Equal(msgs[i].Key, msgs[i+1].Key) {
			t.Fatalf("messages %d and %d of one call were split: %+v, %+v", i, i+1, msgs[i], msgs[i+1])
		}
	}
	ids := make(map[string]bool, len(msgs))
	for _, m := range msgs {
		if ids[m.ID] {
			t.Fatalf("duplicate ID %q", m.ID)
		}
		ids[m.ID] = true
	}
}

func TestNopExecer(t *testing.T) {
	res, err := outboxtest.NopExecer{}.ExecContext(context.Background(), "DELETE FROM anything")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := res.RowsAffected(); n != 0 || err != nil {
		t.Errorf("RowsAffected() = %d, %v; want 0, nil", n, err)
	}
}

func TestFakePublisherWaitPublished(t *testing.T) {
	p := outboxtest.NewFakePublisher()
	go func() {
		time.Sleep(20 * time.Millisecond)
		p.Publish(context.Background(), []outbox.Record{{MessageID: "a", Topic: "t"}, {MessageID: "b", Topic: "t"}})
	}()
	if got := p.WaitPublished(t, 2, 5*time.Second); len(got) != 2 {
		t.Fatalf("WaitPublished returned %d records", len(got))
	}
	ft := &fakeTB{}
	p.WaitPublished(ft, 3, 20*time.Millisecond)
	if len(ft.Fatals) != 1 || !strings.Contains(ft.Fatals[0], "outboxtest: 2 of 3 records published") {
		t.Fatalf("failure not reported as expected: %q", ft.Fatals)
	}
}
