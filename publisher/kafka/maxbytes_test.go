package kafka

import (
	"bytes"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/outboxrelay/outbox"
)

// TestMaxMessageBytesFromBroker: with MaxMessageBytes 0 the publisher uses
// the broker's message.max.bytes, refuses larger records itself
// (permanently) and reports the limit.
func TestMaxMessageBytesFromBroker(t *testing.T) {
	c := startCluster(t, kfake.BrokerConfigs(map[string]string{"message.max.bytes": "4000"}))
	var logs bytes.Buffer
	cfg := testConfig(c)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	p := newPublisher(t, cfg)
	if got := p.MaxMessageBytes(); got != 4000 {
		t.Fatalf("MaxMessageBytes() = %d, want the broker's 4000", got)
	}
	errs := publish(t, p,
		outbox.Record{MessageID: "small", Topic: "t1", Value: []byte("small")},
		outbox.Record{MessageID: "big", Topic: "t1", Value: bytes.Repeat([]byte("x"), 5000)},
	)
	if errs[0] != nil {
		t.Errorf("small record: %v", errs[0])
	}
	if !outbox.IsPermanent(errs[1]) || !strings.Contains(errs[1].Error(), "MaxMessageBytes") {
		t.Errorf("big record: %v, want Sarama's permanent MaxMessageBytes error", errs[1])
	}
	if logs.Len() != 0 {
		t.Errorf("unexpected log: %s", logs.String())
	}
}

// TestMaxMessageBytesBrokerDefault: kfake's default message.max.bytes is
// Kafka's, 1048588.
func TestMaxMessageBytesBrokerDefault(t *testing.T) {
	p := newPublisher(t, testConfig(startCluster(t)))
	if got := p.MaxMessageBytes(); got != 1048588 {
		t.Errorf("MaxMessageBytes() = %d, want Kafka's default 1048588", got)
	}
}

// TestMaxMessageBytesExplicit: a set MaxMessageBytes wins over the broker's
// and is not asked for.
func TestMaxMessageBytesExplicit(t *testing.T) {
	c := startCluster(t, kfake.BrokerConfigs(map[string]string{"message.max.bytes": "4000"}))
	var asked atomic.Bool
	c.ControlKey(int16(kmsg.DescribeConfigs), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		asked.Store(true)
		return nil, nil, false
	})
	cfg := testConfig(c)
	cfg.MaxMessageBytes = 3000
	p := newPublisher(t, cfg)
	if got := p.MaxMessageBytes(); got != 3000 {
		t.Errorf("MaxMessageBytes() = %d, want 3000", got)
	}
	if asked.Load() {
		t.Error("the broker was asked although MaxMessageBytes is set")
	}
}

// TestMaxMessageBytesFallback: a broker that refuses DescribeConfigs gives
// outbox.DefaultMaxMessageBytes and a warning that names the setting.
func TestMaxMessageBytesFallback(t *testing.T) {
	c := startCluster(t)
	c.ControlKey(int16(kmsg.DescribeConfigs), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kr.(*kmsg.DescribeConfigsRequest)
		resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
		for _, r := range req.Resources {
			rr := kmsg.NewDescribeConfigsResponseResource()
			rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
			rr.ErrorCode = kerr.ClusterAuthorizationFailed.Code
			resp.Resources = append(resp.Resources, rr)
		}
		return resp, nil, true
	})
	var logs bytes.Buffer
	cfg := testConfig(c)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	p := newPublisher(t, cfg)
	if got := p.MaxMessageBytes(); got != outbox.DefaultMaxMessageBytes {
		t.Errorf("MaxMessageBytes() = %d, want outbox.DefaultMaxMessageBytes", got)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "message.max.bytes") {
		t.Errorf("no warning naming message.max.bytes: %q", logs.String())
	}
	requireNoErrors(t, publish(t, p, outbox.Record{MessageID: "a", Topic: "t1", Value: []byte("v")}), 1)
}
