package ctxtime_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/internal/ctxtime"
)

func TestSleep(t *testing.T) {
	if !ctxtime.Sleep(context.Background(), time.Millisecond) {
		t.Error("Sleep reported a cut wait with a live context")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if ctxtime.Sleep(ctx, time.Hour) {
		t.Error("Sleep reported a full wait with an ended context")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Sleep took %s with an ended context", d)
	}
}

func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	fmt.Println(ctxtime.Sleep(ctx, time.Millisecond), ctxtime.Sleep(ctx, time.Hour))
	// Output: true false
}
