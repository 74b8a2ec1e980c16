package outbox

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

// countingExecer is an Execer that records statements without a database.
type countingExecer struct {
	mu    sync.Mutex
	calls int
	args  []int // number of arguments per statement
}

func (e *countingExecer) ExecContext(_ context.Context, _ string, args ...any) (sql.Result, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls++
	e.args = append(e.args, len(args))
	return nil, nil
}

func validMsg() Message {
	return Message{Topic: "orders", Key: []byte("k"), Value: []byte("v")}
}

// checkMessageError asserts err is a *MessageError for message index with
// the sentinel want, matching ErrInvalidMessage too.
func checkMessageError(t *testing.T, err error, want error, index int, topic string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %v", want)
	}
	if !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("errors.Is(%v, ErrInvalidMessage) = false", err)
	}
	if !errors.Is(err, want) {
		t.Errorf("errors.Is(%v, %v) = false", err, want)
	}
	var me *MessageError
	if !errors.As(err, &me) {
		t.Fatalf("errors.As(%v, *MessageError) = false", err)
	}
	if me.Index != index {
		t.Errorf("Index = %d, want %d", me.Index, index)
	}
	if me.Topic != topic {
		t.Errorf("Topic = %q, want %q", me.Topic, topic)
	}
	if me.Err != want {
		t.Errorf("Err = %v, want %v", me.Err, want)
	}
	if me.Reason == "" {
		t.Error("Reason is empty")
	}
	if msg := err.Error(); !strings.Contains(msg, want.Error()) {
		t.Errorf("Error() = %q does not mention %q", msg, want.Error())
	}
	// Only the specific sentinel it carries: no other one.
	for _, other := range []error{ErrInvalidTopic, ErrMessageTooLarge, ErrInvalidHeader, ErrInvalidID, ErrInvalidSchedule} {
		if other != want && errors.Is(err, other) {
			t.Errorf("error %v also matches %v", err, other)
		}
	}
}

func TestValidate(t *testing.T) {
	with := func(f func(m *Message)) Message {
		m := validMsg()
		f(&m)
		return m
	}
	const (
		limit = DefaultMaxMessageBytes
		ro    = recordOverhead
		ho    = headerOverhead
	)
	tests := []struct {
		name  string
		msg   Message
		limit int   // 0: DefaultMaxMessageBytes
		want  error // nil: valid
	}{
		// Topics.
		{"topic ok", validMsg(), 0, nil},
		{"topic all allowed chars", with(func(m *Message) { m.Topic = "abcxyzABCXYZ0189._-" }), 0, nil},
		{"topic single char", with(func(m *Message) { m.Topic = "a" }), 0, nil},
		{"topic with dots", with(func(m *Message) { m.Topic = "..." }), 0, nil},
		{"topic .a", with(func(m *Message) { m.Topic = ".a" }), 0, nil},
		{"topic 249", with(func(m *Message) { m.Topic = strings.Repeat("t", 249) }), 0, nil},
		{"topic empty", with(func(m *Message) { m.Topic = "" }), 0, ErrInvalidTopic},
		{"topic 250", with(func(m *Message) { m.Topic = strings.Repeat("t", 250) }), 0, ErrInvalidTopic},
		{"topic 10000", with(func(m *Message) { m.Topic = strings.Repeat("t", 10000) }), 0, ErrInvalidTopic},
		{"topic .", with(func(m *Message) { m.Topic = "." }), 0, ErrInvalidTopic},
		{"topic ..", with(func(m *Message) { m.Topic = ".." }), 0, ErrInvalidTopic},
		{"topic space", with(func(m *Message) { m.Topic = "a b" }), 0, ErrInvalidTopic},
		{"topic leading space", with(func(m *Message) { m.Topic = " ab" }), 0, ErrInvalidTopic},
		{"topic trailing space", with(func(m *Message) { m.Topic = "ab " }), 0, ErrInvalidTopic},
		{"topic slash", with(func(m *Message) { m.Topic = "a/b" }), 0, ErrInvalidTopic},
		{"topic é", with(func(m *Message) { m.Topic = "caf\u00e9" }), 0, ErrInvalidTopic},
		{"topic NUL", with(func(m *Message) { m.Topic = "a\x00b" }), 0, ErrInvalidTopic},
		{"topic colon", with(func(m *Message) { m.Topic = "a:b" }), 0, ErrInvalidTopic},
		{"topic plus", with(func(m *Message) { m.Topic = "a+b" }), 0, ErrInvalidTopic},
		{"topic star", with(func(m *Message) { m.Topic = "a*" }), 0, ErrInvalidTopic},
		{"topic tab", with(func(m *Message) { m.Topic = "a\tb" }), 0, ErrInvalidTopic},
		{"topic newline", with(func(m *Message) { m.Topic = "a\n" }), 0, ErrInvalidTopic},
		{"topic backslash", with(func(m *Message) { m.Topic = `a\b` }), 0, ErrInvalidTopic},
		{"topic 0xff", with(func(m *Message) { m.Topic = "a\xff" }), 0, ErrInvalidTopic},
		{"topic DEL", with(func(m *Message) { m.Topic = "a\x7f" }), 0, ErrInvalidTopic},
		{"topic 249 with bad last char", with(func(m *Message) { m.Topic = strings.Repeat("t", 248) + "/" }), 0, ErrInvalidTopic},
		// 249 bytes is the limit even when the characters are multi-byte.
		{"topic 125 é", with(func(m *Message) { m.Topic = strings.Repeat("\u00e9", 125) }), 0, ErrInvalidTopic},

		// IDs.
		{"id empty", with(func(m *Message) { m.ID = "" }), 0, nil},
		{"id 128", with(func(m *Message) { m.ID = strings.Repeat("i", 128) }), 0, nil},
		{"id utf8", with(func(m *Message) { m.ID = "ключ-🔑" }), 0, nil},
		{"id 128 bytes multibyte", with(func(m *Message) { m.ID = strings.Repeat("\u00e9", 64) }), 0, nil},
		{"id 129", with(func(m *Message) { m.ID = strings.Repeat("i", 129) }), 0, ErrInvalidID},
		{"id 129 bytes multibyte", with(func(m *Message) { m.ID = strings.Repeat("\u00e9", 64) + "i" }), 0, ErrInvalidID},
		{"id invalid utf8", with(func(m *Message) { m.ID = "id-\xff" }), 0, ErrInvalidID},
		{"id truncated utf8", with(func(m *Message) { m.ID = "id-\xc3" }), 0, ErrInvalidID},
		{"id NUL", with(func(m *Message) { m.ID = "id\x00x" }), 0, ErrInvalidID},
		{"id only NUL", with(func(m *Message) { m.ID = "\x00" }), 0, ErrInvalidID},

		// Headers.
		{"header ok", with(func(m *Message) { m.Headers = []Header{{Key: "a", Value: []byte("b")}} }), 0, nil},
		{"header nil value", with(func(m *Message) { m.Headers = []Header{{Key: "a"}} }), 0, nil},
		{"header non-utf8 value", with(func(m *Message) { m.Headers = []Header{{Key: "a", Value: []byte{0xff, 0, 0xfe}}} }), 0, nil},
		{"header utf8 name", with(func(m *Message) { m.Headers = []Header{{Key: "ключ", Value: nil}} }), 0, nil},
		{"header name Outbox-Id differs by case", with(func(m *Message) { m.Headers = []Header{{Key: "Outbox-Id"}} }), 0, nil},
		{"header repeated names", with(func(m *Message) { m.Headers = []Header{{Key: "a"}, {Key: "a"}} }), 0, nil},
		{"header empty name", with(func(m *Message) { m.Headers = []Header{{Key: "", Value: []byte("v")}} }), 0, ErrInvalidHeader},
		{"header empty name second", with(func(m *Message) { m.Headers = []Header{{Key: "a"}, {Key: ""}} }), 0, ErrInvalidHeader},
		{"header non-utf8 name", with(func(m *Message) { m.Headers = []Header{{Key: "a\xff"}} }), 0, ErrInvalidHeader},
		{"header reserved", with(func(m *Message) { m.Headers = []Header{{Key: HeaderID, Value: []byte("x")}} }), 0, ErrInvalidHeader},
		{"header reserved literal", with(func(m *Message) { m.Headers = []Header{{Key: "x"}, {Key: "outbox-id"}} }), 0, ErrInvalidHeader},

		// Schedules.
		{"delay ok", with(func(m *Message) { m.Delay = time.Second }), 0, nil},
		{"available at ok", with(func(m *Message) { m.AvailableAt = time.Now().Add(time.Hour) }), 0, nil},
		{"available at past ok", with(func(m *Message) { m.AvailableAt = time.Now().Add(-time.Hour) }), 0, nil},
		{"delay negative", with(func(m *Message) { m.Delay = -time.Nanosecond }), 0, ErrInvalidSchedule},
		{"delay negative with available at", with(func(m *Message) { m.Delay = -time.Second; m.AvailableAt = time.Now() }), 0, ErrInvalidSchedule},
		{"both", with(func(m *Message) { m.Delay = time.Second; m.AvailableAt = time.Now().Add(time.Hour) }), 0, ErrInvalidSchedule},

		// Sizes: key + value + header names + header values, plus the
		// framing allowance (recordOverhead, and headerOverhead per header).
		{"size at default limit", Message{Topic: "t", Value: make([]byte, limit-ro)}, 0, nil},
		{"size over default limit", Message{Topic: "t", Value: make([]byte, limit-ro+1)}, 0, ErrMessageTooLarge},
		{"size at limit all parts", Message{Topic: "t", Key: make([]byte, 3), Value: make([]byte, 4),
			Headers: []Header{{Key: "ab", Value: make([]byte, 1)}}}, 10 + ro + ho, nil},
		{"size over limit all parts", Message{Topic: "t", Key: make([]byte, 3), Value: make([]byte, 4),
			Headers: []Header{{Key: "abc", Value: make([]byte, 1)}}}, 10 + ro + ho, ErrMessageTooLarge},
		{"size over limit by header value", Message{Topic: "t", Key: make([]byte, 3), Value: make([]byte, 4),
			Headers: []Header{{Key: "ab", Value: make([]byte, 2)}}}, 10 + ro + ho, ErrMessageTooLarge},
		{"size each header counts its framing", Message{Topic: "t", Headers: []Header{{Key: "a"}, {Key: "b"}}}, 2 + ro + ho, ErrMessageTooLarge},
		{"size over limit key only", Message{Topic: "t", Key: make([]byte, 11)}, 10 + ro, ErrMessageTooLarge},
		{"size custom at limit", Message{Topic: "t", Value: make([]byte, 100)}, 100 + ro, nil},
		{"size custom over limit", Message{Topic: "t", Value: make([]byte, 101)}, 100 + ro, ErrMessageTooLarge},
		{"size topic and id do not count", Message{ID: strings.Repeat("i", 128), Topic: strings.Repeat("t", 249), Value: make([]byte, 5)}, 5 + ro, nil},
		{"size negative limit means default", Message{Topic: "t", Value: make([]byte, limit-ro)}, -1, nil},
		{"size negative limit means default over", Message{Topic: "t", Value: make([]byte, limit-ro+1)}, -1, ErrMessageTooLarge},
		{"empty message", Message{Topic: "t"}, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Alone, then after two valid messages: the index must follow.
			err := Validate(tc.limit, tc.msg)
			err3 := Validate(tc.limit, validMsg(), validMsg(), tc.msg, validMsg())
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				if err3 != nil {
					t.Fatalf("Validate of 4 = %v, want nil", err3)
				}
				return
			}
			checkMessageError(t, err, tc.want, 0, tc.msg.Topic)
			checkMessageError(t, err3, tc.want, 2, tc.msg.Topic)

			// The validation inside Enqueue is the same and writes nothing.
			maxBytes := tc.limit
			if maxBytes < 0 {
				maxBytes = 0
			}
			o, err := New(Config{Dialect: nopDialect{}, MaxMessageBytes: maxBytes})
			if err != nil {
				t.Fatal(err)
			}
			exec := &countingExecer{}
			err = o.Enqueue(context.Background(), exec, validMsg(), tc.msg)
			checkMessageError(t, err, tc.want, 1, tc.msg.Topic)
			if exec.calls != 0 {
				t.Errorf("Enqueue of an invalid message executed %d statements", exec.calls)
			}
		})
	}
}

func TestValidateFirstInvalidWins(t *testing.T) {
	bad1 := Message{Topic: ""}
	bad2 := Message{Topic: "ok", ID: "\x00"}
	err := Validate(0, validMsg(), bad2, bad1)
	checkMessageError(t, err, ErrInvalidID, 1, "ok")
	// Within one message, the topic is checked first.
	err = Validate(0, Message{Topic: "a b", ID: "\x00", Delay: -1})
	checkMessageError(t, err, ErrInvalidTopic, 0, "a b")
}

func TestValidateEmpty(t *testing.T) {
	if err := Validate(0); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
}

func TestValidateDoesNotModify(t *testing.T) {
	msgs := []Message{validMsg(), {Topic: "x"}}
	if err := Validate(0, msgs...); err != nil {
		t.Fatal(err)
	}
	if msgs[0].ID != "" || msgs[1].ID != "" {
		t.Fatal("Validate set an ID")
	}
}

func TestMessageErrorFormat(t *testing.T) {
	err := Validate(0, validMsg(), Message{Topic: "a/b"})
	want := `outbox: invalid topic (message 1, topic "a/b"): topic has '/' at byte 1; allowed are [a-zA-Z0-9._-]`
	if err == nil || err.Error() != want {
		t.Fatalf("Error() = %v\nwant      %s", err, want)
	}
}

// TestTopicEveryByte checks every single byte against the allowed set.
func TestTopicEveryByte(t *testing.T) {
	for c := 0; c < 256; c++ {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		topic := "x" + string([]byte{byte(c)}) + "y"
		err := Validate(0, Message{Topic: topic})
		if ok && err != nil {
			t.Errorf("byte %#x: %v", c, err)
		}
		if !ok && !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("byte %#x: got %v, want ErrInvalidTopic", c, err)
		}
	}
}

// fakeDialect implements dialect.Dialect without a database; only Insert
// is used by the root package.
type fakeDialect struct{}

func (fakeDialect) Name() dialect.Name { return "fake" }
func (fakeDialect) Insert(context.Context, dialect.Execer, []dialect.InsertRow) error {
	return errors.New("fakeDialect: Insert")
}
func (fakeDialect) EnsureShards(context.Context, *sql.DB, int) error { return nil }
func (fakeDialect) Heartbeat(context.Context, *sql.DB, string, time.Duration) (int, error) {
	return 1, nil
}
func (fakeDialect) Deregister(context.Context, *sql.DB, string) error { return nil }
func (fakeDialect) Acquire(context.Context, *sql.DB, string, int, time.Duration) ([]dialect.Lease, error) {
	return nil, nil
}
func (fakeDialect) Renew(context.Context, *sql.DB, string, []dialect.Lease, time.Duration) ([]dialect.Lease, error) {
	return nil, nil
}
func (fakeDialect) Release(context.Context, *sql.DB, string, []dialect.Lease) error { return nil }
func (fakeDialect) ReadBatch(context.Context, *sql.DB, dialect.ReadRequest) ([]dialect.Row, error) {
	return nil, nil
}
func (fakeDialect) Ack(context.Context, *sql.DB, []int64) (int64, error)  { return 0, nil }
func (fakeDialect) Retry(context.Context, *sql.DB, []dialect.Retry) error { return nil }
func (fakeDialect) DeadLetter(context.Context, *sql.DB, []dialect.Failure) error {
	return nil
}
func (fakeDialect) Stats(context.Context, *sql.DB) (dialect.Stats, error) {
	return dialect.Stats{}, nil
}
func (fakeDialect) SupportsNotify() bool { return false }

// nopDialect's Insert executes one statement with one argument per row.
type nopDialect struct{ fakeDialect }

func (nopDialect) Insert(ctx context.Context, exec dialect.Execer, msgs []dialect.InsertRow) error {
	args := make([]any, len(msgs))
	for i := range msgs {
		args[i] = msgs[i].MessageID
	}
	_, err := exec.ExecContext(ctx, "INSERT", args...)
	return err
}

// rowRecorder records the rows Enqueue hands to the dialect.
type rowRecorder struct {
	fakeDialect
	rows []dialect.InsertRow
}

func (r *rowRecorder) Insert(_ context.Context, _ dialect.Execer, msgs []dialect.InsertRow) error {
	r.rows = append(r.rows, msgs...)
	return nil
}

func TestKeyHashGolden(t *testing.T) {
	golden := []struct {
		key  []byte
		want uint64
	}{
		{nil, 0xcbf29ce484222325},
		{[]byte{}, 0xcbf29ce484222325},
		{[]byte("a"), 0xaf63dc4c8601ec8c},
		{[]byte("foobar"), 0x85944171f73967e8},
		{[]byte("order-42"), 0x7d1deb86a05662d4},
		{[]byte{0}, 0xaf63bd4c8601b7df},
		{[]byte{0xff, 0, 0xff}, 0xf920341be414d4af},
	}
	for _, g := range golden {
		if got := KeyHash(g.key); got != g.want {
			t.Errorf("KeyHash(%q) = %#x, want %#x", g.key, got, g.want)
		}
		h := fnv.New64a()
		h.Write(g.key)
		if got := h.Sum64(); got != g.want {
			t.Errorf("hash/fnv of %q = %#x, golden value %#x is wrong", g.key, got, g.want)
		}
	}
	// And against hash/fnv for many more keys.
	for i := range 2000 {
		key := []byte(strings.Repeat("k", i%17) + string(rune(i)))
		h := fnv.New64a()
		h.Write(key)
		if KeyHash(key) != h.Sum64() {
			t.Fatalf("KeyHash(%q) differs from hash/fnv", key)
		}
	}
}

func TestShardFor(t *testing.T) {
	// Golden values: changing them reorders in-flight messages on upgrade.
	golden := []struct {
		key    []byte
		shards int
		want   int
	}{
		{nil, 64, int(0xcbf29ce484222325 % 64)},
		{[]byte("a"), 64, int(0xaf63dc4c8601ec8c % 64)},
		{[]byte("a"), 16, int(0xaf63dc4c8601ec8c % 16)},
		{[]byte("foobar"), 4096, int(0x85944171f73967e8 % 4096)},
		{[]byte("order-42"), 7, int(0x7d1deb86a05662d4 % 7)},
		{[]byte("a"), 1, 0},
	}
	for _, g := range golden {
		if got := ShardFor(g.key, g.shards); got != g.want {
			t.Errorf("ShardFor(%q, %d) = %d, want %d", g.key, g.shards, got, g.want)
		}
	}
	// Stability: the same key always maps to the same shard; range.
	seen := map[int]bool{}
	for i := range 10000 {
		key := []byte("key-" + string(rune('a'+i%26)) + hex.EncodeToString([]byte{byte(i), byte(i >> 8)}))
		for _, n := range []int{1, 2, 16, 64, 1000, MaxNumShards} {
			s := ShardFor(key, n)
			if s < 0 || s >= n {
				t.Fatalf("ShardFor(%q, %d) = %d: out of range", key, n, s)
			}
			if s2 := ShardFor(key, n); s2 != s {
				t.Fatalf("ShardFor(%q, %d) unstable: %d then %d", key, n, s, s2)
			}
			if uint64(s) != KeyHash(key)%uint64(n) {
				t.Fatalf("ShardFor(%q, %d) = %d, not KeyHash mod n", key, n, s)
			}
		}
		seen[ShardFor(key, 64)] = true
	}
	if len(seen) != 64 {
		t.Errorf("10000 keys hit only %d of 64 shards", len(seen))
	}
	// Degenerate shard counts do not panic.
	for _, n := range []int{0, -1, -64} {
		if got := ShardFor([]byte("a"), n); got != 0 {
			t.Errorf("ShardFor(a, %d) = %d, want 0", n, got)
		}
	}
}

func TestNewMessageID(t *testing.T) {
	const n = 100_000
	before := time.Now().UnixMilli()
	seen := make(map[string]struct{}, n)
	for range n {
		id := NewMessageID()
		checkUUIDv7(t, id)
		if _, dup := seen[id]; dup {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = struct{}{}
	}
	after := time.Now().UnixMilli()
	id := NewMessageID()
	ms := uuidMillis(t, id)
	if ms < before-1000 || ms > after+1000 {
		t.Errorf("timestamp of %s is %d ms, want in [%d, %d]", id, ms, before, after)
	}
}

func TestNewMessageIDConcurrent(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ids := make([]string, 2000)
			for i := range ids {
				ids[i] = NewMessageID()
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				if seen[id] {
					t.Errorf("duplicate id %s", id)
				}
				seen[id] = true
			}
		})
	}
	wg.Wait()
}

// checkUUIDv7 checks the canonical text form of a UUIDv7.
func checkUUIDv7(t *testing.T, id string) {
	t.Helper()
	if len(id) != 36 {
		t.Fatalf("id %q has %d chars, want 36", id, len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				t.Fatalf("id %q: byte %d is %q, want '-'", id, i, c)
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				t.Fatalf("id %q: byte %d is %q, want lowercase hex", id, i, c)
			}
		}
	}
	if id[14] != '7' {
		t.Fatalf("id %q: version nibble %q, want 7", id, id[14])
	}
	if !strings.ContainsRune("89ab", rune(id[19])) {
		t.Fatalf("id %q: variant nibble %q, want one of 89ab", id, id[19])
	}
}

// uuidMillis returns the Unix milliseconds of a UUIDv7.
func uuidMillis(t *testing.T, id string) int64 {
	t.Helper()
	b, err := hex.DecodeString(id[0:8] + id[9:13])
	if err != nil {
		t.Fatal(err)
	}
	var ms int64
	for _, c := range b {
		ms = ms<<8 | int64(c)
	}
	return ms
}

func TestEnqueueUnit(t *testing.T) {
	ctx := context.Background()
	o, err := New(Config{Dialect: nopDialect{}, NumShards: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("nil executor", func(t *testing.T) {
		if err := o.Enqueue(ctx, nil, validMsg()); !errors.Is(err, ErrNilExecutor) {
			t.Fatalf("got %v, want ErrNilExecutor", err)
		}
		var tx *sql.Tx
		if err := o.Enqueue(ctx, tx, validMsg()); !errors.Is(err, ErrNilExecutor) {
			t.Fatalf("typed nil: got %v, want ErrNilExecutor", err)
		}
		var ce *countingExecer
		if err := o.Enqueue(ctx, ce); !errors.Is(err, ErrNilExecutor) {
			t.Fatalf("typed nil, no messages: got %v, want ErrNilExecutor", err)
		}
	})
	t.Run("no messages", func(t *testing.T) {
		exec := &countingExecer{}
		if err := o.Enqueue(ctx, exec); err != nil {
			t.Fatal(err)
		}
		if err := o.Enqueue(ctx, exec, []Message{}...); err != nil {
			t.Fatal(err)
		}
		if exec.calls != 0 {
			t.Fatalf("%d statements for no messages", exec.calls)
		}
	})
	t.Run("chunks", func(t *testing.T) {
		for _, tc := range []struct{ n, calls int }{
			{1, 1}, {MaxRowsPerStatement - 1, 1}, {MaxRowsPerStatement, 1},
			{MaxRowsPerStatement + 1, 2}, {2500, 3}, {3 * MaxRowsPerStatement, 3},
		} {
			exec := &countingExecer{}
			msgs := make([]Message, tc.n)
			for i := range msgs {
				msgs[i] = validMsg()
			}
			if err := o.Enqueue(ctx, exec, msgs...); err != nil {
				t.Fatal(err)
			}
			if exec.calls != tc.calls {
				t.Errorf("%d messages: %d statements, want %d", tc.n, exec.calls, tc.calls)
			}
			total := 0
			for _, a := range exec.args {
				total += a
			}
			if total != tc.n {
				t.Errorf("%d messages: %d rows in the statements", tc.n, total)
			}
		}
	})
	t.Run("rows", func(t *testing.T) {
		rec := &rowRecorder{}
		o, err := New(Config{Dialect: rec, NumShards: 16})
		if err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(time.Hour)
		msgs := []Message{
			{Topic: "a", Key: []byte("k1"), Value: []byte("v"), Headers: []Header{{Key: "h", Value: []byte{0xff}}}},
			{Topic: "b", ID: "mine", Value: nil},
			{Topic: "c", Key: []byte{}, Delay: time.Minute},
			{Topic: "d", Key: []byte("k1"), AvailableAt: at},
		}
		if err := o.Enqueue(ctx, &countingExecer{}, msgs...); err != nil {
			t.Fatal(err)
		}
		if len(rec.rows) != 4 {
			t.Fatalf("%d rows", len(rec.rows))
		}
		r := rec.rows
		checkUUIDv7(t, r[0].MessageID)
		if r[1].MessageID != "mine" {
			t.Errorf("caller ID not kept: %q", r[1].MessageID)
		}
		if r[0].KeyHash != int64(KeyHash([]byte("k1"))) || r[0].Shard != ShardFor([]byte("k1"), 16) {
			t.Errorf("row 0: hash %d shard %d", r[0].KeyHash, r[0].Shard)
		}
		if r[3].Shard != r[0].Shard {
			t.Errorf("same key, different shards: %d, %d", r[0].Shard, r[3].Shard)
		}
		if r[1].Key != nil || r[1].KeyHash != 0 || r[1].Shard != ShardFor([]byte("mine"), 16) {
			t.Errorf("keyless row: key %v hash %d shard %d", r[1].Key, r[1].KeyHash, r[1].Shard)
		}
		if r[2].Key == nil || r[2].KeyHash != int64(KeyHash(nil)) {
			t.Errorf("empty key row: key %v hash %d", r[2].Key, r[2].KeyHash)
		}
		hs, err := DecodeHeaders(r[0].Headers)
		if err != nil || len(hs) != 1 || hs[0].Key != "h" || string(hs[0].Value) != "\xff" {
			t.Errorf("headers %v, %v", hs, err)
		}
		if r[1].Headers != nil {
			t.Errorf("no headers encode to %v, want nil", r[1].Headers)
		}
		if r[0].Delay != 0 || r[2].Delay != time.Minute {
			t.Errorf("delays %v %v", r[0].Delay, r[2].Delay)
		}
		if d := r[3].Delay; d <= 59*time.Minute || d > time.Hour {
			t.Errorf("AvailableAt in an hour gave delay %v", d)
		}
		if msgs[0].ID != "" {
			t.Error("Enqueue modified the caller's message")
		}
	})
}

func TestZeroOutbox(t *testing.T) {
	var o Outbox
	err := o.Enqueue(context.Background(), &countingExecer{}, Message{Topic: "t"})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "Dialect" {
		t.Fatalf("zero Outbox Enqueue = %v, want a ConfigError naming Dialect", err)
	}
	var nilOutbox *Outbox
	if err := nilOutbox.Enqueue(context.Background(), &countingExecer{}, Message{Topic: "t"}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("nil *Outbox Enqueue = %v", err)
	}
}

// A call whose payload passes 64 MiB is split, whatever the row count.
func TestEnqueueChunksByBytes(t *testing.T) {
	o, err := New(Config{Dialect: nopDialect{}, MaxMessageBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, maxBytesPerStatement/2+1) // shared by all messages
	exec := &countingExecer{}
	msgs := []Message{{Topic: "t", Value: big}, {Topic: "t", Value: big}, {Topic: "t", Value: big}, {Topic: "t", Value: []byte("x")}}
	if err := o.Enqueue(context.Background(), exec, msgs...); err != nil {
		t.Fatal(err)
	}
	if want := []int{2, 2}; !slices.Equal(exec.args, want) {
		t.Fatalf("statements carried %v messages, want %v", exec.args, want)
	}
}
