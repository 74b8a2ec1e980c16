package outbox

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"time"
	"unicode/utf8"
)

// HeaderID is the header every published record carries: the message's ID,
// a UUIDv7 unless the caller set Message.ID. Consumers de-duplicate by it.
const HeaderID = "outbox-id"

// Limits of a message.
const (
	// DefaultMaxMessageBytes is Kafka's default message.max.bytes (1 MiB).
	DefaultMaxMessageBytes = 1 << 20
	// MaxTopicLength is Kafka's limit on topic names.
	MaxTopicLength = 249
	// MaxIDLength is the longest caller-supplied Message.ID, in bytes.
	MaxIDLength = 128
)

// Message is one record to publish once the enqueuing transaction commits.
type Message struct {
	// ID identifies the message and is sent as the outbox-id header. Leave
	// it empty and Enqueue makes a UUIDv7, or set it (at most 128 bytes of
	// UTF-8). While a message is pending, enqueueing another with the same
	// ID fails with ErrDuplicateID (on PostgreSQL the failed INSERT aborts
	// the caller's transaction); once published, the ID is free again, so
	// consumers still de-duplicate by outbox-id.
	ID string
	// Topic is the Kafka topic: 1 to 249 characters of [a-zA-Z0-9._-].
	Topic string
	// Key decides the partition and the order: messages with the same key
	// are published in the order they were enqueued. When the transactions
	// that enqueue a key follow one another (each commits before the next
	// enqueues, as when writers lock the aggregate's row first), that is
	// their commit order. A nil Key means no key; such messages are spread
	// over shards and have no order.
	Key []byte
	// Value is the record's value. A nil Value is a null value (a tombstone
	// on compacted topics), distinct from an empty one.
	Value []byte
	// Headers are the record's headers, in order. Names are non-empty UTF-8
	// and may not be "outbox-id", which the relay sets.
	Headers []Header
	// AvailableAt delays publishing until that time (an ETA). It is turned
	// into a delay with the enqueuing process's clock, and the delay is
	// counted from the database clock. Zero means at once.
	AvailableAt time.Time
	// Delay delays publishing by this long after the enqueuing
	// transaction's database time (a countdown). Set AvailableAt or Delay,
	// not both.
	Delay time.Duration
}

// Header is a record header. A nil Value is a null header value.
type Header struct {
	Key   string
	Value []byte
}

// Framing allowance counted against MaxMessageBytes on top of key, value
// and headers: a Kafka record batch header (61 bytes), the record's own
// fields (up to 21 bytes of varints), the outbox-id header the relay adds
// (9 + up to 128 bytes + varints) and per-header varints. With it, a message
// that Enqueue accepts fits a broker whose message.max.bytes is the same
// limit, even alone in its batch.
const (
	// recordOverhead is counted once per message.
	recordOverhead = 256
	// headerOverhead is counted once per header.
	headerOverhead = 10
)

// size is what the message counts against MaxMessageBytes.
func (m *Message) size() int {
	n := recordOverhead + len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += headerOverhead + len(h.Key) + len(h.Value)
	}
	return n
}

// Validate checks msgs as Enqueue does, with maxMessageBytes as the size
// limit (0 means DefaultMaxMessageBytes). It returns a *MessageError for the
// first invalid message. Fakes use it to reject what the real Outbox would.
func Validate(maxMessageBytes int, msgs ...Message) error {
	if maxMessageBytes <= 0 {
		maxMessageBytes = DefaultMaxMessageBytes
	}
	for i := range msgs {
		if err := validate(&msgs[i], maxMessageBytes); err != nil {
			err.Index, err.Topic = i, msgs[i].Topic
			return err
		}
	}
	return nil
}

func validate(m *Message, maxBytes int) *MessageError {
	if reason := checkTopic(m.Topic); reason != "" {
		return &MessageError{Err: ErrInvalidTopic, Reason: reason}
	}
	if m.ID != "" {
		switch {
		case len(m.ID) > MaxIDLength:
			return &MessageError{Err: ErrInvalidID, Reason: fmt.Sprintf("ID is %d bytes, the limit is %d", len(m.ID), MaxIDLength)}
		case !utf8.ValidString(m.ID):
			return &MessageError{Err: ErrInvalidID, Reason: "ID is not valid UTF-8"}
		case containsNUL(m.ID):
			return &MessageError{Err: ErrInvalidID, Reason: "ID contains a NUL byte"}
		}
	}
	for j, h := range m.Headers {
		switch {
		case h.Key == "":
			return &MessageError{Err: ErrInvalidHeader, Reason: fmt.Sprintf("header %d has an empty name", j)}
		case !utf8.ValidString(h.Key):
			return &MessageError{Err: ErrInvalidHeader, Reason: fmt.Sprintf("header %d: name is not valid UTF-8", j)}
		case h.Key == HeaderID:
			return &MessageError{Err: ErrInvalidHeader, Reason: fmt.Sprintf("header %q is reserved: set Message.ID instead", HeaderID)}
		}
	}
	if m.Delay < 0 {
		return &MessageError{Err: ErrInvalidSchedule, Reason: fmt.Sprintf("Delay is negative (%s)", m.Delay)}
	}
	if m.Delay != 0 && !m.AvailableAt.IsZero() {
		return &MessageError{Err: ErrInvalidSchedule, Reason: "set AvailableAt or Delay, not both"}
	}
	if n := m.size(); n > maxBytes {
		return &MessageError{Err: ErrMessageTooLarge, Reason: fmt.Sprintf("key, value, headers and framing are %d bytes, the limit is %d", n, maxBytes)}
	}
	return nil
}

// checkTopic returns why topic is not a valid Kafka topic name, or "".
func checkTopic(topic string) string {
	switch {
	case topic == "":
		return "topic is empty"
	case len(topic) > MaxTopicLength:
		return fmt.Sprintf("topic is %d characters, the limit is %d", len(topic), MaxTopicLength)
	case topic == "." || topic == "..":
		return fmt.Sprintf("topic cannot be %q", topic)
	}
	for i := 0; i < len(topic); i++ {
		c := topic[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Sprintf("topic has %q at byte %d; allowed are [a-zA-Z0-9._-]", c, i)
		}
	}
	return ""
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

// KeyHash is the stable 64-bit hash of a message key: FNV-1a 64 over the
// key's bytes. It is stored with every keyed message and decides its shard.
// It never changes between releases: changing it would reorder the messages
// of a key that are in flight during an upgrade.
func KeyHash(key []byte) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(key)
	return h.Sum64()
}

// ShardFor returns the shard of a key: KeyHash(key) mod numShards. Messages
// of one key always share a shard, which one relay at a time owns.
func ShardFor(key []byte, numShards int) int {
	if numShards <= 0 {
		return 0
	}
	return int(KeyHash(key) % uint64(numShards))
}

// NewMessageID returns a new UUIDv7 (RFC 9562) in its canonical text form:
// 48 bits of Unix milliseconds, then random bits, so IDs sort roughly by
// creation time.
func NewMessageID() string {
	var u [16]byte
	_, _ = rand.Read(u[6:])
	ms := uint64(time.Now().UnixMilli())
	u[0], u[1], u[2] = byte(ms>>40), byte(ms>>32), byte(ms>>24)
	u[3], u[4], u[5] = byte(ms>>16), byte(ms>>8), byte(ms)
	u[6] = u[6]&0x0f | 0x70 // version 7
	u[8] = u[8]&0x3f | 0x80 // variant 10
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:])
}
