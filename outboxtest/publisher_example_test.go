package outboxtest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/outboxtest"
)

// FakePublisher stands in for Kafka in tests of code that runs a relay;
// inject failures to see how it copes.
func ExampleFakePublisher() {
	pub := outboxtest.NewFakePublisher()
	pub.FailNext(1, outboxtest.ErrRetriable)
	pub.FailTopic("audit", outboxtest.ErrPermanent)

	errs := pub.Publish(context.Background(), []outbox.Record{
		{MessageID: "1", Topic: "orders", Key: []byte("a")},
		{MessageID: "2", Topic: "orders", Key: []byte("b")},
		{MessageID: "3", Topic: "audit", Key: []byte("c")},
	})
	for i, err := range errs {
		fmt.Printf("record %d: err=%v permanent=%v\n", i+1, err != nil, outbox.IsPermanent(err))
	}
	fmt.Println("published:", len(pub.Published()), "unavailable?", errors.Is(outboxtest.ErrUnavailable, outbox.ErrUnavailable))
	// Output:
	// record 1: err=true permanent=false
	// record 2: err=false permanent=false
	// record 3: err=true permanent=true
	// published: 1 unavailable? true
}
