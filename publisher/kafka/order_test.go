package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/internal/localkafka"
)

// countProduce counts the produce requests the cluster gets.
func countProduce(c *kfake.Cluster) *atomic.Int64 {
	n := new(atomic.Int64)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		n.Add(1)
		return nil, nil, false
	})
	return n
}

// hotRecords returns n records of topic, all of key, in order.
func hotRecords(topic, key string, n, valueBytes int) []outbox.Record {
	recs := make([]outbox.Record, n)
	for i := range recs {
		v := fmt.Appendf(nil, "%05d ", i)
		v = append(v, bytes.Repeat([]byte("v"), max(0, valueBytes-len(v)))...)
		recs[i] = outbox.Record{MessageID: fmt.Sprintf("%s-%05d", key, i), Topic: topic, Key: []byte(key), Value: v}
	}
	return recs
}

// keyOrderBroken checks the rule an OrderedPublisher keeps, against what
// the broker holds: a record is appended only if every earlier record of
// its key in the call was appended or failed permanently, and a record is
// appended exactly when its error is nil. It describes the first breach,
// or returns "".
func keyOrderBroken(recs []outbox.Record, errs []error, onBroker []*kgo.Record) string {
	pos := map[string]int{}
	for i, r := range recs {
		pos[r.MessageID] = i
	}
	appended := map[string]int{}
	last := map[string]int{} // key -> position in recs of its last record on the broker
	for _, r := range onBroker {
		id := string(localkafka.Header(r, outbox.HeaderID))
		appended[id]++
		if p, ok := last[string(r.Key)]; ok && pos[id] < p {
			return fmt.Sprintf("record %s is on the broker after a later record of its key", id)
		}
		last[string(r.Key)] = pos[id]
	}
	missing := map[string]string{} // key -> first record not appended (not permanently failed)
	for i, r := range recs {
		n := appended[r.MessageID]
		switch {
		case n > 1:
			return fmt.Sprintf("record %s appended %d times", r.MessageID, n)
		case (n == 1) != (errs[i] == nil):
			return fmt.Sprintf("record %s: error %v, appended %d times", r.MessageID, errs[i], n)
		case n == 1 && missing[string(r.Key)] != "":
			return fmt.Sprintf("record %s appended after the earlier %s of its key was not", r.MessageID, missing[string(r.Key)])
		case n == 0 && !outbox.IsPermanent(errs[i]) && missing[string(r.Key)] == "":
			missing[string(r.Key)] = r.MessageID
		}
	}
	return ""
}

// A hot key costs one produce request per call, not one per record: the
// records of a partition go in one record batch.
func TestHotKeyOneRequest(t *testing.T) {
	c := startCluster(t)
	p := newPublisher(t, testConfig(c))
	requireNoErrors(t, publish(t, p, outbox.Record{MessageID: "warm", Topic: "t3", Value: []byte("v")}), 1)
	requests := countProduce(c)

	recs := hotRecords("t3", "hot", 2000, 256)
	for k := range 10 { // and ten warm keys across the three partitions
		recs = append(recs, hotRecords("t3", fmt.Sprint("warm-", k), 50, 256)...)
	}
	requireNoErrors(t, publish(t, p, recs...), len(recs))
	if n := requests.Load(); n != 1 {
		t.Errorf("%d produce requests for %d records on one broker, want 1", n, len(recs))
	}
	if broken := keyOrderBroken(recs, make([]error, len(recs)), consume(t, c, "t3", len(recs)+1)); broken != "" {
		t.Error(broken)
	}
}

// Once a batch of a partition fails for good (here after RetryMax), the
// partition's later records in the call are not sent (outbox.ErrNotSent):
// the broker holds a prefix of the key's records. With the rule removed the
// check fails: later batches are appended after the gap.
func TestOrderRuleAfterFailedBatch(t *testing.T) {
	for _, tc := range []struct {
		name       string
		removeRule bool
	}{{"rule", false}, {"rule removed", true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t)
			cfg := testConfig(c)
			cfg.MaxMessageBytes = 2000 // about five records a batch
			cfg.RetryMax = 1
			p := newPublisher(t, cfg)
			p.ignoreOrderRule = tc.removeRule
			requireNoErrors(t, publish(t, p, outbox.Record{MessageID: "warm", Topic: "t1", Value: []byte("v")}), 1)

			// Refuse the third batch and its one retry, before the append.
			var n atomic.Int64
			c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				if i := n.Add(1); i == 3 || i == 4 {
					return localkafka.RefuseProduce(kr.(*kmsg.ProduceRequest), kerr.NotEnoughReplicas.Code), nil, true
				}
				return nil, nil, false
			})
			recs := hotRecords("t1", "k", 40, 300)
			errs := p.Publish(t.Context(), recs)
			var ok, notSent int
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case errors.Is(err, outbox.ErrNotSent):
					notSent++
				}
			}
			got := consume(t, c, "t1", 1+ok)[1:]
			broken := keyOrderBroken(recs, errs, got)
			if tc.removeRule {
				if broken == "" {
					t.Fatalf("with the rule removed the check found nothing (%d appended, %d not sent): it proves nothing", ok, notSent)
				}
				t.Logf("without the rule: %s", broken)
				return
			}
			if broken != "" {
				t.Fatal(broken)
			}
			if ok == 0 || notSent == 0 || ok+notSent >= len(recs) {
				t.Errorf("%d appended, %d not sent of %d: want a prefix, a failed batch and the rest held back", ok, notSent, len(recs))
			}
			// The next call goes on where the key stopped.
			requireNoErrors(t, publish(t, p, recs[ok:]...), len(recs)-ok)
			if broken := keyOrderBroken(recs, make([]error, len(recs)), consume(t, c, "t1", 1+len(recs))[1:]); broken != "" {
				t.Errorf("after the resend: %s", broken)
			}
		})
	}
}

// A broker that does not know the producer's sequence any more (it
// restarted, or the producer id expired) refuses the batch; the publisher
// takes a new producer id and the batch goes through, once.
func TestSequenceRefused(t *testing.T) {
	for _, fault := range []*kerr.Error{kerr.OutOfOrderSequenceNumber, kerr.UnknownProducerID, kerr.InvalidProducerEpoch} {
		t.Run(fault.Message, func(t *testing.T) {
			c := startCluster(t)
			p := newPublisher(t, testConfig(c))
			requireNoErrors(t, publish(t, p, outbox.Record{MessageID: "warm", Topic: "t1", Value: []byte("v")}), 1)
			var hits atomic.Int64
			c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
				hits.Add(1)
				return localkafka.RefuseProduce(kr.(*kmsg.ProduceRequest), fault.Code), nil, true
			})
			recs := hotRecords("t1", "k", 20, 50)
			requireNoErrors(t, publish(t, p, recs...), len(recs))
			if hits.Load() != 1 {
				t.Fatalf("the fault hit %d times, want 1", hits.Load())
			}
			if broken := keyOrderBroken(recs, make([]error, len(recs)), consume(t, c, "t1", 21)[1:]); broken != "" {
				t.Error(broken)
			}
			if n := total(c, "t1"); n != 21 {
				t.Errorf("t1 holds %d records, want 21", n)
			}
		})
	}
}

// A topic that does not exist fails its records with ErrUnknownTopic,
// naming it: neither an outage nor permanent (it may be created). The
// other topics of the call are published.
func TestUnknownTopic(t *testing.T) {
	c := startCluster(t)
	p := newPublisher(t, testConfig(c))
	errs := publish(t, p,
		outbox.Record{MessageID: "a", Topic: "missing", Key: []byte("k"), Value: []byte("x")},
		outbox.Record{MessageID: "b", Topic: "t1", Key: []byte("k"), Value: []byte("x")},
	)
	if !errors.Is(errs[0], ErrUnknownTopic) || errors.Is(errs[0], outbox.ErrUnavailable) || outbox.IsPermanent(errs[0]) ||
		!strings.Contains(errs[0].Error(), `"missing"`) {
		t.Errorf("missing topic: %v; want ErrUnknownTopic naming it, not unavailable, not permanent", errs[0])
	}
	if errs[1] != nil {
		t.Errorf("existing topic: %v", errs[1])
	}
}

// dropAnswer is a listener whose connections, once armed, close instead of
// writing the next answer: the broker has appended the batch, the client
// never hears of it.
type dropAnswer struct {
	net.Listener
	armed *atomic.Bool
}

func (l dropAnswer) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return dropConn{c, l.armed}, nil
}

type dropConn struct {
	net.Conn
	armed *atomic.Bool
}

func (c dropConn) Write(b []byte) (int, error) {
	if c.armed.CompareAndSwap(true, false) {
		_ = c.Conn.Close()
		return 0, net.ErrClosed
	}
	return c.Conn.Write(b)
}

// A batch appended without an answer, then the call's context ends while
// the publisher waits to retry it: the partition's sequence is unknown, so
// the next call must not reuse it. With the same producer id and sequence,
// a next batch of as many records would be taken for a duplicate of the
// lost one and dropped by the broker while Publish reports it published.
func TestContextEndsWhileRetrying(t *testing.T) {
	var armed atomic.Bool
	c := startCluster(t, kfake.ListenFn(func(network, addr string) (net.Listener, error) {
		l, err := net.Listen(network, addr)
		return dropAnswer{l, &armed}, err
	}))
	cfg := testConfig(c)
	cfg.RetryBackoff = 2 * time.Second
	p := newPublisher(t, cfg)
	requireNoErrors(t, publish(t, p, outbox.Record{MessageID: "warm", Topic: "t1", Value: []byte("v")}), 1)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		once.Do(func() {
			armed.Store(true)
			time.AfterFunc(300*time.Millisecond, cancel) // during the 2s pause
		})
		return nil, nil, false // appended
	})
	k := hotRecords("t1", "k", 10, 20)
	for i, err := range p.Publish(ctx, k) {
		if err == nil {
			t.Fatalf("record %d published, want the call's context error", i)
		}
	}
	// The next call: another key's record first, then nine of the ten:
	// as many records as the lost batch.
	recs := append([]outbox.Record{{MessageID: "x-1", Topic: "t1", Key: []byte("x"), Value: []byte("x")}}, k[:9]...)
	requireNoErrors(t, publish(t, p, recs...), len(recs))
	found := false
	for _, r := range consume(t, c, "t1", int(total(c, "t1"))) {
		if string(localkafka.Header(r, outbox.HeaderID)) == "x-1" {
			found = true
		}
	}
	if !found {
		t.Fatal("x-1 was reported published but the broker does not have it")
	}
}
