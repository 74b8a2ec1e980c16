package faketb_test

import (
	"fmt"
	"testing"

	"github.com/outboxrelay/outbox/internal/faketb"
)

// requirePositive is a test helper of the kind faketb checks.
func requirePositive(tb testing.TB, n int) {
	tb.Helper()
	if n <= 0 {
		tb.Fatalf("want a positive number, got %d", n)
	}
}

func Example() {
	tb := &faketb.TB{}
	requirePositive(tb, -1)
	fmt.Println(tb.Helpers, tb.Fatals)
	// Output:
	// 1 [want a positive number, got -1]
}
