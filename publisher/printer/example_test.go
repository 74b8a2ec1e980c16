package printer_test

import (
	"context"
	"fmt"
	"os"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/publisher/printer"
)

func Example() {
	pub := printer.New(os.Stdout)
	errs := pub.Publish(context.Background(), []outbox.Record{
		{MessageID: "m-1", Topic: "orders", Key: []byte("o-1"), Value: []byte(`{"total":3}`)},
	})
	rec := <-pub.Published()
	fmt.Println(errs[0], rec.MessageID, pub.Count())
	// Output:
	// published: topic=orders key=o-1 outbox-id=m-1 value={"total":3}
	// <nil> m-1 1
}
