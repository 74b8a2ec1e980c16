package outbox

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the package returns wraps one of them (or
// the driver's or publisher's own error), so callers can use errors.Is.
var (
	// ErrInvalidMessage is wrapped by every validation error of a message;
	// a *MessageError says which message and why.
	ErrInvalidMessage = errors.New("outbox: invalid message")
	// ErrInvalidTopic: the topic is empty, longer than 249 characters, "."
	// or "..", or has a character outside [a-zA-Z0-9._-].
	ErrInvalidTopic = errors.New("outbox: invalid topic")
	// ErrMessageTooLarge: key, value, headers and framing exceed the limit
	// (see Config.MaxMessageBytes).
	ErrMessageTooLarge = errors.New("outbox: message too large")
	// ErrInvalidHeader: a header name is empty, not UTF-8, or reserved.
	ErrInvalidHeader = errors.New("outbox: invalid header")
	// ErrInvalidID: a caller-supplied message ID is too long, not UTF-8 or
	// has a NUL byte.
	ErrInvalidID = errors.New("outbox: invalid message id")
	// ErrInvalidSchedule: both AvailableAt and Delay are set, or Delay is
	// negative.
	ErrInvalidSchedule = errors.New("outbox: invalid schedule")
	// ErrNilExecutor: Enqueue got no transaction (or connection) to write in.
	ErrNilExecutor = errors.New("outbox: nil executor: pass the transaction the messages belong to")
	// ErrInvalidConfig is wrapped by every *ConfigError.
	ErrInvalidConfig = errors.New("outbox: invalid config")
	// ErrDuplicateID: a pending message already has this Message.ID. The
	// database error is wrapped too.
	ErrDuplicateID = errors.New("outbox: duplicate message id")
	// ErrNotMigrated: the outbox tables do not exist. Run "relay migrate"
	// or migrations.Up. The database error is wrapped too.
	ErrNotMigrated = errors.New(`outbox: the outbox tables do not exist: run "relay migrate" or migrations.Up`)
	// ErrCorruptHeaders: stored headers could not be decoded.
	ErrCorruptHeaders = errors.New("outbox: malformed encoded headers")
)

// MessageError says which message of an Enqueue call is invalid and why.
// It matches ErrInvalidMessage and the specific sentinel (ErrInvalidTopic,
// ErrMessageTooLarge, ...) with errors.Is.
type MessageError struct {
	Index  int    // position of the message in the call
	Topic  string // its topic, as given
	Err    error  // the specific sentinel
	Reason string // human-readable detail
}

func (e *MessageError) Error() string {
	return fmt.Sprintf("%v (message %d, topic %q): %s", e.Err, e.Index, e.Topic, e.Reason)
}

// Unwrap returns the specific sentinel and ErrInvalidMessage.
func (e *MessageError) Unwrap() []error { return []error{e.Err, ErrInvalidMessage} }

// ConfigError names the configuration field that is wrong.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("outbox: invalid config: %s %s", e.Field, e.Reason)
}

// Unwrap returns ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// Publishing errors. A Publisher marks each failure so the relay knows what
// to do with the message.
var (
	// ErrUnavailable marks a failure that is not the message's fault: the
	// broker could not be reached. The relay leaves such messages untouched
	// (no attempt is counted), stops the rest of their keys for this batch
	// and backs off as a whole (OutageBackoff). Wrap it with %w.
	ErrUnavailable = errors.New("outbox: broker unavailable")
	// ErrNotSent marks a record that an OrderedPublisher did not send
	// because an earlier record of its partition in the same call did not
	// get through. The relay leaves it untouched (no attempt is counted)
	// and publishes it in a later batch, after the earlier record.
	ErrNotSent = errors.New("outbox: not sent: an earlier record of its key did not get through")
	// ErrRelayRunning: Run was called on a Relay that is already running.
	ErrRelayRunning = errors.New("outbox: relay already running")
)

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as permanent: the broker will never accept the
// message (too large, invalid topic, not authorized). The relay moves such a
// message to the dead-letter table at once; the other messages, even of the
// same key, flow on. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
