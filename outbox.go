package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/outboxrelay/outbox/dialect"
)

// Defaults of Config.
const (
	// DefaultNumShards is the number of shards: the unit of ordering and of
	// work distribution between relays. It bounds how many relays can work
	// in parallel.
	DefaultNumShards = 64
	// MaxNumShards is the largest allowed NumShards.
	MaxNumShards = 4096
	// MaxRowsPerStatement is how many messages one INSERT carries. Enqueue
	// of more messages issues one statement per this many (still in the
	// caller's transaction).
	MaxRowsPerStatement = 1000
	// maxBytesPerStatement keeps one INSERT far below the 1 GB protocol
	// message limit of PostgreSQL and MySQL's max_allowed_packet ceiling.
	maxBytesPerStatement = 64 << 20
)

// Execer is what Enqueue writes through: *sql.Tx, *sql.DB, *sql.Conn,
// *sqlx.Tx, GORM's ConnPool (tx.Statement.ConnPool inside a transaction)
// and ent's *ent.Tx (generated with --feature sql/execquery) all satisfy it. Pass the transaction of the business
// change: then the messages commit or roll back with it.
type Execer = dialect.Execer

// Enqueuer is what application code needs to depend on. *Outbox implements
// it; outboxtest.Recorder is a fake for unit tests.
type Enqueuer interface {
	// Enqueue writes msgs in the transaction exec. Nothing is written when
	// any message is invalid.
	Enqueue(ctx context.Context, exec Execer, msgs ...Message) error
}

// Config configures an Outbox. The zero value of every field but Dialect
// means its default.
type Config struct {
	// Dialect is the SQL dialect of the database (dialect.Postgres(),
	// dialect.MySQL(), dialect.SQLite()). Required.
	Dialect dialect.Dialect
	// NumShards must be the same in the application and in every relay.
	// Default DefaultNumShards (64).
	NumShards int
	// MaxMessageBytes limits one message: key, value and headers, plus an
	// allowance of 256 bytes and 10 per header for Kafka's record framing
	// and the outbox-id header. Set it to the broker's (or topic's)
	// message.max.bytes: a message Enqueue accepts then always fits.
	// Default DefaultMaxMessageBytes (1 MiB).
	MaxMessageBytes int
	// Logger receives the warning for messages enqueued outside a
	// transaction. Default: no logging.
	Logger *slog.Logger
	// ContextHeaders, when set, returns headers taken from Enqueue's ctx
	// (a request id, a tenant, a user) that Enqueue adds to every message
	// of the call. They are validated like the message's own headers (a
	// bad one fails the call, nothing written). A message's own header of
	// the same name wins, unless OverrideHeaders is set. Default: none, at
	// no cost.
	ContextHeaders func(ctx context.Context) []Header
	// Propagator writes the trace context of Enqueue's ctx into every
	// message's headers (traceparent, tracestate and baggage with the W3C
	// propagators), so that the relay's span and the consumer continue the
	// request's trace. Default nil: OpenTelemetry's global propagator
	// (otel.SetTextMapPropagator), looked up at each call; with none set,
	// the global default, Enqueue adds nothing and allocates nothing for
	// it. propagation.NewCompositeTextMapPropagator() (no propagators)
	// turns it off whatever the global one. Its headers obey the rules of
	// ContextHeaders (validated; a message's own header, and one of
	// ContextHeaders, of the same name wins unless OverrideHeaders).
	Propagator propagation.TextMapPropagator
	// OverrideHeaders lets the headers of ContextHeaders and Propagator
	// replace a message's own headers of the same name. Default false.
	OverrideHeaders bool
}

// Validate reports the first invalid field as a *ConfigError (errors.Is
// ErrInvalidConfig), as New would, after filling in the defaults.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

// withDefaults fills defaults and validates, naming the wrong field.
func (c Config) withDefaults() (Config, error) {
	if c.Dialect == nil {
		return c, &ConfigError{Field: "Dialect", Reason: "is required (dialect.Postgres(), dialect.MySQL() or dialect.SQLite())"}
	}
	if c.NumShards == 0 {
		c.NumShards = DefaultNumShards
	}
	if c.NumShards < 1 || c.NumShards > MaxNumShards {
		return c, &ConfigError{Field: "NumShards", Reason: fmt.Sprintf("must be between 1 and %d, got %d", MaxNumShards, c.NumShards)}
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxMessageBytes < 0 {
		return c, &ConfigError{Field: "MaxMessageBytes", Reason: fmt.Sprintf("must be positive, got %d", c.MaxMessageBytes)}
	}
	return c, nil
}

// Outbox enqueues messages into the outbox table. It is safe for concurrent
// use and holds no connection of its own.
type Outbox struct {
	cfg      Config
	warnOnce sync.Once
}

// New returns an Outbox for cfg, or a *ConfigError.
func New(cfg Config) (*Outbox, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Outbox{cfg: cfg}, nil
}

// Enqueue writes msgs into the outbox table through exec, in one INSERT per
// MaxRowsPerStatement messages (or per 64 MiB of payload). One INSERT is one
// network round trip when the driver sends parameters with the statement:
// lib/pq with binary_parameters=yes, go-sql-driver/mysql with
// interpolateParams=true; otherwise the driver prepares it first (two). Pass the transaction of
// the business change: the messages are published after it commits and
// never if it rolls back.
//
// Every message is validated first; if one is invalid, Enqueue returns a
// *MessageError (errors.Is ErrInvalidMessage) and writes nothing. A nil exec
// returns ErrNilExecutor. Enqueue does not modify msgs. With no messages it
// does nothing.
//
// Atomicity comes from the caller's transaction: given a *sql.DB (or a
// *sql.Conn outside a transaction), each INSERT of up to
// MaxRowsPerStatement messages commits on its own, so a failure in a later
// one leaves the earlier ones written.
func (o *Outbox) Enqueue(ctx context.Context, exec Execer, msgs ...Message) error {
	if o == nil || o.cfg.Dialect == nil {
		return &ConfigError{Field: "Dialect", Reason: "is not set: create the Outbox with outbox.New"}
	}
	if isNil(exec) {
		return ErrNilExecutor
	}
	if len(msgs) == 0 {
		return nil
	}
	msgs = o.withContextHeaders(ctx, msgs)
	if err := Validate(o.cfg.MaxMessageBytes, msgs...); err != nil {
		return err
	}
	if o.cfg.Logger != nil && outsideTx(exec) {
		o.warnOnce.Do(func() {
			o.cfg.Logger.Warn("outbox: Enqueue called with a pool or connection, not a transaction: "+
				"the messages commit on their own, not with a business change", "executor", fmt.Sprintf("%T", exec))
		})
	}
	rows := make([]dialect.InsertRow, len(msgs))
	now := time.Now()
	for i := range msgs {
		o.row(&rows[i], &msgs[i], now)
	}
	for len(rows) > 0 {
		n, bytes := 0, 0
		for n < len(rows) && n < MaxRowsPerStatement && (n == 0 || bytes < maxBytesPerStatement) {
			bytes += len(rows[n].Key) + len(rows[n].Value) + len(rows[n].Headers)
			n++
		}
		chunk := rows[:n]
		rows = rows[n:]
		if err := o.cfg.Dialect.Insert(ctx, exec, chunk); err != nil {
			if dialect.IsUniqueViolation(err) {
				return fmt.Errorf("%w: %w", ErrDuplicateID, err)
			}
			if dialect.IsMissingTable(err) {
				return fmt.Errorf("%w: %w", ErrNotMigrated, err)
			}
			return fmt.Errorf("outbox: enqueue %d messages: %w", len(chunk), err)
		}
	}
	return nil
}

// row turns a validated message into the row to insert.
func (o *Outbox) row(r *dialect.InsertRow, m *Message, now time.Time) {
	r.MessageID = m.ID
	if r.MessageID == "" {
		r.MessageID = NewMessageID()
	}
	r.Topic, r.Key, r.Value = m.Topic, m.Key, m.Value
	r.Headers = encodeHeaders(m.Headers)
	if m.Key != nil {
		h := KeyHash(m.Key)
		r.KeyHash = int64(h)
		r.Shard = int(h % uint64(o.cfg.NumShards))
	} else {
		// Keyless messages have no order to keep: spread them by ID.
		r.Shard = int(KeyHash([]byte(r.MessageID)) % uint64(o.cfg.NumShards))
	}
	r.Delay = m.Delay
	if !m.AvailableAt.IsZero() {
		r.Delay = m.AvailableAt.Sub(now)
	}
}

// outsideTx reports whether exec can begin database/sql transactions, as
// pools and connections can (*sql.DB, *sql.Conn, *sqlx.DB, GORM's pool) and
// transactions cannot. (An *ent.Client begins *ent.Tx, so it is not seen.)
func outsideTx(exec Execer) bool {
	switch exec.(type) {
	case interface {
		BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)
	}, interface{ Begin() (*sql.Tx, error) }:
		return true
	}
	return false
}

// isNil reports whether exec is nil or a typed nil pointer, which would
// panic on ExecContext.
func isNil(exec Execer) bool {
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
