package outboxtest

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/outboxrelay/outbox"
)

// TB is the part of testing.TB the assertion helpers use. *testing.T,
// *testing.B and *testing.F satisfy it.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Want selects recorded messages. A zero field means "don't check": the
// zero Want matches every message. To check that a key or value is nil,
// inspect the message RequireEnqueued returns.
type Want struct {
	// ID, if set, must equal Message.ID.
	ID string
	// Topic, if set, must equal Message.Topic.
	Topic string
	// Key, if non-nil, must equal Message.Key, which must be non-nil too
	// (so []byte{} matches an empty key but not a missing one).
	Key []byte
	// Value, if non-nil, must equal Message.Value, which must be non-nil
	// too (so []byte{} matches an empty value but not a null one).
	Value []byte
	// Headers lists headers the message must have, in any order and among
	// others. A header with a nil Value matches only a null header value.
	Headers []outbox.Header
}

// match reports whether m has everything w asks for.
func (w Want) match(m *outbox.Message) bool {
	if w.ID != "" && m.ID != w.ID {
		return false
	}
	if w.Topic != "" && m.Topic != w.Topic {
		return false
	}
	if !matchBytes(w.Key, m.Key) || !matchBytes(w.Value, m.Value) {
		return false
	}
	for _, wh := range w.Headers {
		found := false
		for _, h := range m.Headers {
			if h.Key == wh.Key && (h.Value == nil) == (wh.Value == nil) && bytes.Equal(h.Value, wh.Value) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func matchBytes(want, got []byte) bool {
	return want == nil || (got != nil && bytes.Equal(want, got))
}

// String describes w for failure messages.
func (w Want) String() string {
	var parts []string
	if w.ID != "" {
		parts = append(parts, fmt.Sprintf("id=%q", w.ID))
	}
	if w.Topic != "" {
		parts = append(parts, fmt.Sprintf("topic=%q", w.Topic))
	}
	if w.Key != nil {
		parts = append(parts, "key="+quote(w.Key))
	}
	if w.Value != nil {
		parts = append(parts, "value="+quote(w.Value))
	}
	if len(w.Headers) > 0 {
		parts = append(parts, "headers="+quoteHeaders(w.Headers))
	}
	if len(parts) == 0 {
		return "{any message}"
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// RequireEnqueued fails tb unless at least one message recorded by r matches
// want, and returns the first match.
func RequireEnqueued(tb TB, r *Recorder, want Want) outbox.Message {
	tb.Helper()
	if r == nil {
		tb.Fatalf("outboxtest: RequireEnqueued: nil *Recorder")
		return outbox.Message{}
	}
	msgs := r.Messages()
	for i := range msgs {
		if want.match(&msgs[i]) {
			return msgs[i]
		}
	}
	tb.Fatalf("outboxtest: no message matching %v was enqueued; %s", want, describe(msgs))
	return outbox.Message{}
}

// RequireNotEnqueued fails tb if any message recorded by r matches want.
func RequireNotEnqueued(tb TB, r *Recorder, want Want) {
	tb.Helper()
	if r == nil {
		tb.Fatalf("outboxtest: RequireNotEnqueued: nil *Recorder")
		return
	}
	msgs := r.Messages()
	if n := count(msgs, want); n > 0 {
		tb.Fatalf("outboxtest: expected no message matching %v, found %d; %s", want, n, describe(msgs))
	}
}

// RequireEnqueuedCount fails tb unless exactly n messages recorded by r
// match want. With the zero Want it checks the total.
func RequireEnqueuedCount(tb TB, r *Recorder, want Want, n int) {
	tb.Helper()
	if r == nil {
		tb.Fatalf("outboxtest: RequireEnqueuedCount: nil *Recorder")
		return
	}
	if n < 0 {
		tb.Fatalf("outboxtest: RequireEnqueuedCount: n is negative (%d)", n)
		return
	}
	msgs := r.Messages()
	if got := count(msgs, want); got != n {
		tb.Fatalf("outboxtest: expected %d messages matching %v, got %d; %s", n, want, got, describe(msgs))
	}
}

func count(msgs []outbox.Message, want Want) int {
	n := 0
	for i := range msgs {
		if want.match(&msgs[i]) {
			n++
		}
	}
	return n
}

// maxShown is how many bytes of a key, value or header value a failure
// message shows.
const maxShown = 64

// maxListed is how many recorded messages a failure message lists.
const maxListed = 20

// describe lists msgs for a failure message.
func describe(msgs []outbox.Message) string {
	if len(msgs) == 0 {
		return "nothing was recorded"
	}
	return fmt.Sprintf("recorded %d:%s", len(msgs), List(msgs))
}

// List shows msgs one per line, each line starting with a newline and a
// tab, as the failure messages of this package do; for test helpers in
// other packages (outboxtest/sqlitetest, outboxtest/kafkatest). It shows at
// most the first 20 messages and cuts keys and values at 64 bytes.
func List(msgs []outbox.Message) string {
	var b strings.Builder
	for i := range msgs {
		if i == maxListed {
			fmt.Fprintf(&b, "\n\t... and %d more", len(msgs)-maxListed)
			break
		}
		m := &msgs[i]
		fmt.Fprintf(&b, "\n\t[%d] topic=%q key=%s value=%s", i, m.Topic, quote(m.Key), quote(m.Value))
		if len(m.Headers) > 0 {
			b.WriteString(" headers=" + quoteHeaders(m.Headers))
		}
		fmt.Fprintf(&b, " id=%q", m.ID)
	}
	return b.String()
}

// quote shows b quoted, nil as <nil>, and cuts it at maxShown bytes.
func quote(b []byte) string {
	switch {
	case b == nil:
		return "<nil>"
	case len(b) > maxShown:
		return fmt.Sprintf("%q...(%d bytes)", b[:maxShown], len(b))
	}
	return fmt.Sprintf("%q", b)
}

func quoteHeaders(hs []outbox.Header) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = fmt.Sprintf("%q:%s", h.Key, quote(h.Value))
	}
	return "[" + strings.Join(parts, " ") + "]"
}
