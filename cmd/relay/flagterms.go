package main

import (
	"errors"
	"strings"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/publisher/kafka"
)

// fieldFlags names the Config fields of the publisher and the relay by
// the flags that set them, for the errors of their Validate methods.
// Longer names come first: a replacer takes the first that matches.
var fieldFlags = strings.NewReplacer(
	"SASL.Mechanism", "--kafka-sasl-mechanism",
	"SASL.User", "--kafka-sasl-user",
	"SASL.Password", "OUTBOX_KAFKA_SASL_PASSWORD",
	"MaxMessageBytes", "--kafka-max-message-bytes",
	"ClientID", "--kafka-client-id",
	"Version must", "--kafka-version must",
	"Brokers", "--kafka-brokers",
	"NumShards", "--shards",
	"ID must", "--relay-id must",
	"BatchSize", "--batch-size",
	"BatchBytes", "--batch-bytes",
	"MinPollInterval", "the shortest poll interval",
	"PollInterval", "--poll-interval",
	"LeaseDuration", "--lease-duration",
	"RenewInterval", "the lease renewal interval",
	"MaxAttempts", "--max-attempts",
	"RetryBackoffMax", "--retry-backoff-max",
	"RetryBackoff", "--retry-backoff",
	"OutageBackoffMax", "--outage-backoff-max",
	"OutageBackoff", "--outage-backoff",
	"ProbeInterval", "--probe-interval",
	"PublishTimeout", "--publish-timeout",
	"ShutdownTimeout", "--shutdown-timeout",
)

// flagTermsError is a configuration error of the publisher or the relay,
// told in the words of the command line. It unwraps to ErrUsage and to
// the original error (kafka.ErrInvalidConfig, outbox.ErrInvalidConfig).
type flagTermsError struct {
	msg string
	err error
}

func (e *flagTermsError) Error() string   { return e.msg }
func (e *flagTermsError) Unwrap() []error { return []error{ErrUsage, e.err} }

// inFlagTerms rewrites err, from kafka.Config.Validate or
// outbox.RelayConfig.Validate, with flag names instead of field names.
func inFlagTerms(err error) error {
	if !errors.Is(err, kafka.ErrInvalidConfig) && !errors.Is(err, outbox.ErrInvalidConfig) {
		return err
	}
	msg := err.Error()
	for _, prefix := range []string{"kafka: ", outbox.ErrInvalidConfig.Error() + ": "} {
		msg = strings.TrimPrefix(msg, prefix)
	}
	return &flagTermsError{msg: fieldFlags.Replace(msg), err: err}
}
