package main

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/publisher/kafka"
)

// TestBrokerRTTOnEveryConnection: with --broker-rtt the broker advertises
// the delaying listener itself, so the connections a client opens after
// bootstrap (to the advertised address) are delayed too: a publish on a
// warm producer, which talks only to the advertised broker, takes at least
// the round trip. Lower bounds only.
func TestBrokerRTTOnEveryConnection(t *testing.T) {
	const rtt = 30 * time.Millisecond
	e := &env{opts: &commonOpts{partitions: 2, brokerRTT: rtt}, stderr: io.Discard}
	defer e.close()
	if err := e.startBroker([]string{"rtt.test"}); err != nil {
		t.Fatal(err)
	}
	if len(e.delayed) != 1 {
		t.Fatalf("%d delaying listeners, want kfake's one", len(e.delayed))
	}
	listening := e.delayed[0].Addr().String()

	// What the broker advertises is the delaying listener.
	cl, err := sarama.NewClient(e.brokers, saramaAdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.RefreshMetadata("rtt.test"); err != nil {
		t.Fatal(err)
	}
	for _, b := range cl.Brokers() {
		if b.Addr() != listening {
			t.Errorf("the broker advertises %s, not the delaying listener %s", b.Addr(), listening)
		}
	}

	// The relay's publisher, warm: its produce requests go to the
	// advertised address.
	pub, err := kafka.New(kafka.Config{Brokers: e.brokers, ClientID: "rtt-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	rec := []outbox.Record{{MessageID: "m", Topic: "rtt.test", Key: []byte("k"), Value: []byte("v")}}
	for i := range 3 {
		start := time.Now()
		if errs := pub.Publish(context.Background(), rec); errs[0] != nil {
			t.Fatal(errs[0])
		}
		if took := time.Since(start); i > 0 && took < rtt {
			t.Errorf("publish %d on a warm producer took %s, want at least the round trip %s", i, took, rtt)
		}
	}
	// raw_broker's producer: the same configuration, the same path.
	took, err := rawProduce(context.Background(), e.brokers, loadSpec{topic: "rtt.test", n: 10, valueBytes: 8, keys: 3, skew: skewUniform})
	if err != nil {
		t.Fatal(err)
	}
	if took < rtt {
		t.Errorf("raw_broker's 10 records took %s, want at least the round trip %s", took, rtt)
	}
	// Each client dialed the bootstrap address, then the advertised one:
	// the admin client, the publisher (and its own configuration query)
	// and raw_broker's producer.
	if n := e.delayedConns(); n < 6 {
		t.Errorf("%d connections went through the delay, want at least 6 (two per client)", n)
	}
	t.Logf("%d connections, all through the %s delay", e.delayedConns(), rtt)
}
