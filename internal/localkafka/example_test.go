package localkafka_test

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/outboxrelay/outbox/internal/localkafka"
)

func Example() {
	b, err := localkafka.Start(1, []string{"orders"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs...))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cl.Close()
	rec := &kgo.Record{Topic: "orders", Value: []byte("created"),
		Headers: []kgo.RecordHeader{{Key: "outbox-id", Value: []byte("m1")}}}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		fmt.Println(err)
		return
	}

	c, err := localkafka.NewConsumer(b.Addrs, "orders")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	for _, r := range c.Poll(ctx) {
		fmt.Println(string(r.Value), string(localkafka.Header(r, "outbox-id")))
	}
	// Output:
	// created m1
}
