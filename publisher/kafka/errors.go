package kafka

import "errors"

// Sentinel errors of the package; use errors.Is.
var (
	// ErrInvalidConfig is wrapped by every error that New and
	// Config.Validate return for a wrong Config. Such an error also matches
	// outbox.ErrInvalidConfig, and its message names the field.
	ErrInvalidConfig = errors.New("kafka: invalid config")
	// ErrClosed is the failure of records published after Close. Publish
	// returns it wrapped with outbox.ErrUnavailable, so the relay leaves
	// the messages for later.
	ErrClosed = errors.New("kafka: publisher closed")
	// ErrAuthentication: the cluster refused the SASL credentials, or does
	// not support the mechanism. Waiting does not help, so it does not
	// wrap outbox.ErrUnavailable.
	ErrAuthentication = errors.New("kafka: SASL authentication failed")
	// ErrUnknownTopic: the topic does not exist and the cluster did not
	// create it. The relay retries such a record with backoff (the topic
	// may be created meanwhile) and dead-letters it after MaxAttempts.
	ErrUnknownTopic = errors.New("kafka: topic does not exist")
)
