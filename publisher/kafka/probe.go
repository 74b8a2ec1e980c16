package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/IBM/sarama"
)

// prober checks that a bootstrap broker answers, on connections of its own
// (the client's may be half-dead after an outage), with short timeouts
// (probeConfig).
type prober struct {
	brokers []string
	conf    *sarama.Config
}

// run returns nil as soon as one broker answers an ApiVersions request,
// else the last failure wrapped with outbox.ErrUnavailable (or
// ErrAuthentication).
func (pr prober) run(ctx context.Context) error {
	var last error
	for _, addr := range pr.brokers {
		err := pr.one(ctx, addr)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		last = err
	}
	return connectError(fmt.Errorf("probing the brokers: %w", last), pr.conf.Net.SASL.Password)
}

// one asks the broker at addr for its API versions.
func (pr prober) one(ctx context.Context, addr string) error {
	b := sarama.NewBroker(addr)
	if err := b.Open(pr.conf); err != nil && !errors.Is(err, sarama.ErrAlreadyConnected) {
		return err
	}
	done := make(chan error, 1)
	go func() {
		_, err := b.ApiVersions(&sarama.ApiVersionsRequest{})
		_ = b.Close()
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err() // the goroutine closes the broker when it answers or times out
	}
}
