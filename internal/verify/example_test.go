package verify_test

import (
	"fmt"

	"github.com/outboxrelay/outbox/internal/verify"
)

func Example() {
	l := verify.New()
	l.Committed("m1", "order-1", 1)
	l.Committed("m2", "order-1", 2)
	l.RolledBack("m3")

	// What a consumer read: m2 before m1 is a reordered first delivery,
	// the second m2 a duplicate.
	for _, id := range []string{"m2", "m1", "m2"} {
		l.Observe(id)
	}
	s := l.Summary()
	fmt.Println(s)
	fmt.Println("ok:", s.OK())
	// Output:
	// committed=2 published=2 lost=0 rolled_back_published=0 order_violations=1 duplicates=1
	// ok: false
}
