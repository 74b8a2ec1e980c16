package outboxtest

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"reflect"
	"slices"
	"sync"

	"github.com/outboxrelay/outbox"
)

// Recorder is a fake outbox.Enqueuer that keeps the messages it is given in
// memory. The zero value is ready to use and validates against
// outbox.DefaultMaxMessageBytes. A Recorder is safe for concurrent use; set
// its fields before first use.
//
// Enqueue behaves like (*outbox.Outbox).Enqueue: a nil executor returns
// outbox.ErrNilExecutor, an invalid message returns the same
// *outbox.MessageError, and a failing call records nothing. Recorded
// messages are deep copies with Message.ID filled in (a new UUIDv7 when the
// caller left it empty); the caller's messages are never modified.
type Recorder struct {
	// MaxMessageBytes is the size limit, as outbox.Config.MaxMessageBytes.
	// Default outbox.DefaultMaxMessageBytes; a negative value makes
	// Enqueue return the *outbox.ConfigError that outbox.New would.
	MaxMessageBytes int
	// Err, if set, is returned as is by every Enqueue call that passes
	// validation, and nothing is recorded: use it to test how the code
	// under test handles a failing insert.
	Err error

	mu   sync.Mutex
	msgs []outbox.Message
}

var _ outbox.Enqueuer = (*Recorder)(nil)

// Enqueue validates msgs as the real Outbox does and records copies of them.
// The context and exec are not used beyond the nil check of exec.
func (r *Recorder) Enqueue(_ context.Context, exec outbox.Execer, msgs ...outbox.Message) error {
	if r.MaxMessageBytes < 0 {
		return &outbox.ConfigError{Field: "MaxMessageBytes", Reason: fmt.Sprintf("must be positive, got %d", r.MaxMessageBytes)}
	}
	if isNil(exec) {
		return outbox.ErrNilExecutor
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := outbox.Validate(r.MaxMessageBytes, msgs...); err != nil {
		return err
	}
	if r.Err != nil {
		return r.Err
	}
	recorded := make([]outbox.Message, len(msgs))
	for i := range msgs {
		recorded[i] = clone(msgs[i])
		if recorded[i].ID == "" {
			recorded[i].ID = outbox.NewMessageID()
		}
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, recorded...)
	r.mu.Unlock()
	return nil
}

// Messages returns deep copies of the recorded messages, in the order they
// were enqueued.
func (r *Recorder) Messages() []outbox.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]outbox.Message, len(r.msgs))
	for i := range r.msgs {
		out[i] = clone(r.msgs[i])
	}
	return out
}

// Reset forgets every recorded message.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.msgs = nil
	r.mu.Unlock()
}

// clone deep-copies m, keeping nil and empty byte slices distinct.
func clone(m outbox.Message) outbox.Message {
	m.Key = bytes.Clone(m.Key)
	m.Value = bytes.Clone(m.Value)
	m.Headers = slices.Clone(m.Headers)
	for i := range m.Headers {
		m.Headers[i].Value = bytes.Clone(m.Headers[i].Value)
	}
	return m
}

// isNil reports whether exec is nil or a typed nil, as the real Outbox
// checks it.
func isNil(exec outbox.Execer) bool {
	if exec == nil {
		return true
	}
	v := reflect.ValueOf(exec)
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return v.IsNil()
	}
	return false
}

// NopExecer is an outbox.Execer that executes nothing. Pass NopExecer{} to
// code under test that enqueues into a Recorder and needs a transaction it
// never really uses. ExecContext returns driver.RowsAffected(0).
type NopExecer struct{}

var _ outbox.Execer = NopExecer{}

// ExecContext does nothing and reports zero rows affected.
func (NopExecer) ExecContext(context.Context, string, ...any) (sql.Result, error) {
	return driver.RowsAffected(0), nil
}
