package kafka

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/IBM/sarama"

	"github.com/outboxrelay/outbox"
)

func TestClassify(t *testing.T) {
	const (
		retriable = iota
		permanent
		unavailable
	)
	producerErr := func(err error) error {
		return &sarama.ProducerError{Msg: &sarama.ProducerMessage{Topic: "t"}, Err: err}
	}
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "kafka"}}
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		// permanent
		{"broker message too large", sarama.ErrMessageSizeTooLarge, permanent},
		{"record list too large", sarama.ErrMessageSetSizeTooLarge, permanent},
		{"invalid record", sarama.ErrInvalidRecord, permanent},
		{"invalid topic", sarama.ErrInvalidTopic, permanent},
		{"topic authorization", sarama.ErrTopicAuthorizationFailed, permanent},
		{"client message too large", sarama.ConfigurationError("Attempt to produce message larger than configured Producer.MaxMessageBytes: 2000 > 1000"), permanent},
		{"encoding", sarama.PacketEncodingError{Info: "bad"}, permanent},
		{"producer error too large", producerErr(sarama.ErrMessageSizeTooLarge), permanent},
		{"wrapped producer error", fmt.Errorf("publishing: %w", producerErr(sarama.ErrInvalidTopic)), permanent},
		{"already permanent", outbox.Permanent(errors.New("x")), permanent},

		// unavailable
		{"out of brokers", sarama.ErrOutOfBrokers, unavailable},
		{"out of brokers wrapping dial", sarama.Wrap(sarama.ErrOutOfBrokers, dialErr), unavailable},
		{"not connected", sarama.ErrNotConnected, unavailable},
		{"closed client", sarama.ErrClosedClient, unavailable},
		{"shutting down", sarama.ErrShuttingDown, unavailable},
		{"broker not available", sarama.ErrBrokerNotAvailable, unavailable},
		{"leader not available", sarama.ErrLeaderNotAvailable, unavailable},
		{"not leader", producerErr(sarama.ErrNotLeaderForPartition), unavailable},
		{"request timed out", sarama.ErrRequestTimedOut, unavailable},
		{"not enough replicas", sarama.ErrNotEnoughReplicas, unavailable},
		{"not enough replicas after append", sarama.ErrNotEnoughReplicasAfterAppend, unavailable},
		{"network exception", sarama.ErrNetworkException, unavailable},
		{"cluster authorization", sarama.ErrClusterAuthorizationFailed, unavailable},
		{"sasl failed", sarama.ErrSASLAuthenticationFailed, unavailable},
		{"net error", dialErr, unavailable},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, unavailable},
		{"connection reset", fmt.Errorf("read: %w", syscall.ECONNRESET), unavailable},
		{"broken pipe", syscall.EPIPE, unavailable},
		{"eof", io.EOF, unavailable},
		{"unexpected eof", producerErr(io.ErrUnexpectedEOF), unavailable},
		{"already unavailable", fmt.Errorf("%w: x", outbox.ErrUnavailable), unavailable},

		// retriable, as is
		{"unknown topic", sarama.ErrUnknownTopicOrPartition, retriable},
		{"corrupt message", sarama.ErrInvalidMessage, retriable},
		{"out of order sequence", producerErr(sarama.ErrOutOfOrderSequenceNumber), retriable},
		{"invalid timestamp", sarama.ErrInvalidTimestamp, retriable},
		{"unknown server error", sarama.ErrUnknown, retriable},
		{"other configuration error", sarama.ConfigurationError("Producing headers requires Kafka at least v0.11"), retriable},
		{"plain error", errors.New("boom"), retriable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Classify(tc.err)
			if !errors.Is(got, tc.err) {
				t.Errorf("Classify(%v) = %v, which does not wrap the original", tc.err, got)
			}
			isP, isU := outbox.IsPermanent(got), errors.Is(got, outbox.ErrUnavailable)
			switch tc.want {
			case permanent:
				if !isP || isU {
					t.Errorf("Classify(%v) = %v: permanent %v, unavailable %v; want permanent", tc.err, got, isP, isU)
				}
			case unavailable:
				if isP || !isU {
					t.Errorf("Classify(%v) = %v: permanent %v, unavailable %v; want unavailable", tc.err, got, isP, isU)
				}
			default:
				if got != tc.err {
					t.Errorf("Classify(%v) = %v, want it as is", tc.err, got)
				}
			}
		})
	}
	if Classify(nil) != nil {
		t.Error("Classify(nil) != nil")
	}
}

func TestIsBatchError(t *testing.T) {
	for _, err := range []error{sarama.ErrMessageSizeTooLarge, sarama.ErrMessageSetSizeTooLarge, sarama.ErrInvalidRecord, sarama.PacketEncodingError{}} {
		if !isBatchError(Classify(err)) {
			t.Errorf("isBatchError(%v) = false", err)
		}
	}
	for _, err := range []error{sarama.ErrInvalidTopic, sarama.ErrTopicAuthorizationFailed, sarama.ConfigurationError(clientTooLarge + " x"), sarama.ErrOutOfBrokers} {
		if isBatchError(Classify(err)) {
			t.Errorf("isBatchError(%v) = true", err)
		}
	}
}
