// Package dialect holds everything SQL that the outbox library and its relay
// need, behind one interface, with implementations for PostgreSQL, MySQL 8 /
// MariaDB 10.6+ and SQLite.
//
// The package never imports a database driver: the application (or
// cmd/relay) imports the driver it uses and hands a *sql.DB or a transaction
// to the library. Every time that matters for a decision (lease expiry,
// retry schedules, delayed delivery) comes from the database clock, never
// from the clock of the process that runs the query, so relays with skewed
// clocks cannot steal leases from each other.
//
// A dialect is correct when it passes the conformance suite in
// dialect/dialecttest; a new dialect is done when it passes it.
package dialect

import (
	"context"
	"database/sql"
	"time"
)

// Table names. They are fixed so that the migrations stay plain SQL files.
const (
	TableMessages    = "outbox_messages"
	TableShards      = "outbox_shards"
	TableRelays      = "outbox_relays"
	TableDeadLetters = "outbox_dead_letters"
)

// Name is a dialect's short name: NamePostgres, NameMySQL or NameSQLite.
// It names the dialect's migrations directory too.
type Name string

// The dialects' names.
const (
	NamePostgres Name = "postgres"
	NameMySQL    Name = "mysql" // MySQL 8 and MariaDB 10.6+
	NameSQLite   Name = "sqlite"
)

// NotifyChannel is the PostgreSQL channel that the migrations' insert
// trigger notifies when outbox rows commit.
const NotifyChannel = "outbox_messages"

// Execer is what inserting messages needs. *sql.DB, *sql.Tx, *sql.Conn,
// *sqlx.Tx, GORM's ConnPool and ent's transaction all satisfy it.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// InsertRow is one row to insert into the outbox table: an outbox.Message
// after validation, with its key hashed, its shard chosen and its headers
// encoded. Insert writes it.
type InsertRow struct {
	MessageID string // unique id, sent as the outbox-id header
	Topic     string
	Key       []byte // nil means "no key"; an empty non-nil key is a key
	KeyHash   int64  // stable hash of Key; ignored when Key is nil
	Value     []byte // nil means a null value (a tombstone on compacted topics)
	Headers   []byte // encoded headers, nil when there are none
	Shard     int
	// Delay postpones delivery: available_at = database now + Delay.
	// Zero or negative means available at once.
	Delay time.Duration
}

// Row is a stored message as ReadBatch returns it. RowID is the table's
// auto-increment id (the order of the outbox); MessageID is the message's
// own id, which the relay publishes as the outbox-id header.
type Row struct {
	RowID     int64 // auto-increment id: the order of the outbox
	MessageID string
	Topic     string
	Key       []byte
	Value     []byte
	Headers   []byte
	Shard     int
	Attempts  int // failed publish attempts so far
	CreatedAt time.Time
	// KeyHash is the stored hash of Key; 0 when Key is nil.
	KeyHash int64
}

// ReadRequest says what ReadBatch reads.
type ReadRequest struct {
	// Shards are the shards to read: those the caller leases.
	Shards []int
	// Limit is the most records to return.
	Limit int
	// Exclude lists ids to leave out: the rows of a batch that is still
	// being published while the next one is read.
	Exclude []int64
	// After, when positive, leaves out the rows with an id at or below it:
	// the caller knows its shards hold no live row there (a floor), and the
	// read starts above the dead rows that vacuum has not removed yet.
	After int64
	// MaxBytes, when positive, ends the batch after the record that brings
	// the sum of key, value and header sizes to MaxBytes or more (a batch
	// has at least one record), so that large messages cannot make a batch
	// take unbounded memory.
	MaxBytes int
}

// Lease is a shard held by a relay. Fence grows by one every time the shard
// changes owner, so an owner that lost its lease cannot renew it.
type Lease struct {
	Shard int
	Fence int64
}

// Retry schedules one more attempt for a message: attempts+1,
// available_at = database now + Delay, last_error = Err.
type Retry struct {
	RowID int64
	Delay time.Duration
	Err   string
}

// Failure moves a message to the dead-letter table with its error.
type Failure struct {
	RowID int64
	Err   string
}

// Stats are counts for operators and metrics.
type Stats struct {
	Pending     int64         // rows in the outbox table
	Retrying    int64         // rows that failed at least once and wait for another attempt
	Delayed     int64         // rows not yet available (delayed delivery or retry backoff)
	DeadLetters int64         // rows in the dead-letter table
	OldestAge   time.Duration // age of the oldest pending row, 0 when empty
}

// Dialect is everything SQL the library and the relay need. Methods that
// take a *sql.DB may run several statements and short transactions; none
// keeps a transaction open after it returns.
type Dialect interface {
	// Name is the dialect's name: NamePostgres, NameMySQL or NameSQLite.
	Name() Name

	// Insert writes msgs with one multi-row INSERT through exec, usually the
	// caller's transaction.
	Insert(ctx context.Context, exec Execer, msgs []InsertRow) error

	// EnsureShards makes sure the shard rows 0..n-1 exist. It is idempotent
	// and safe to call from several relays at once.
	EnsureShards(ctx context.Context, db *sql.DB, n int) error

	// Heartbeat records that relayID is alive, forgets relays silent for
	// longer than ttl, and returns how many relays are alive (itself included).
	Heartbeat(ctx context.Context, db *sql.DB, relayID string, ttl time.Duration) (live int, err error)
	// Deregister removes relayID from the live relays.
	Deregister(ctx context.Context, db *sql.DB, relayID string) error

	// Acquire leases up to max shards that are free or whose lease expired,
	// for the duration lease, and returns them. Concurrent callers never get
	// the same shard.
	Acquire(ctx context.Context, db *sql.DB, relayID string, max int, lease time.Duration) ([]Lease, error)
	// Renew extends the leases that relayID still holds with the same fence
	// and returns those; a lease taken over by another relay is not renewed.
	Renew(ctx context.Context, db *sql.DB, relayID string, leases []Lease, lease time.Duration) ([]Lease, error)
	// Release gives leases back so that other relays can take them at once.
	Release(ctx context.Context, db *sql.DB, relayID string, leases []Lease) error

	// ReadBatch returns up to req.Limit available messages of req.Shards in
	// id order, leaving out req.Exclude, without locking rows. A message
	// waiting for a retry holds back the later messages of its key (same
	// shard, same key hash); a delayed message that never failed holds back
	// nothing.
	ReadBatch(ctx context.Context, db *sql.DB, req ReadRequest) ([]Row, error)
	// Ack deletes published messages and returns how many rows it deleted.
	Ack(ctx context.Context, db *sql.DB, ids []int64) (int64, error)
	// Retry schedules another attempt for each message.
	Retry(ctx context.Context, db *sql.DB, retries []Retry) error
	// DeadLetter moves messages to the dead-letter table, in one
	// transaction per 1250 messages.
	// Messages already gone (acked or dead-lettered by another relay) are
	// skipped.
	DeadLetter(ctx context.Context, db *sql.DB, failures []Failure) error

	// Stats returns counts of the outbox and dead-letter tables.
	Stats(ctx context.Context, db *sql.DB) (Stats, error)

	// SupportsNotify reports whether committed inserts notify NotifyChannel
	// (PostgreSQL LISTEN/NOTIFY), so a relay can wait instead of polling.
	SupportsNotify() bool
}

// WakeArmer is implemented by dialects whose migrations notify
// NotifyChannel only when a relay asked for it: a relay that is about to
// wait arms the wake-up, and the next committed insert notifies (once). The
// PostgreSQL dialect implements it; a relay that listens must call ArmWake
// before each wait, or it is woken by its polls only.
type WakeArmer interface {
	// ArmWake arms the wake-up. It reports whether the wake-up was disarmed
	// until now: rows were inserted since the last arming without
	// notifying, and may have committed after the caller's last read. The
	// caller should read again, and not trust a long wait for a
	// notification until the transactions that were inserting then
	// (InFlightWriters, asked after this arming) have ended (WritersEnded)
	// and it has read once more. False means no row was inserted since the
	// last arming, and the next committed insert notifies.
	ArmWake(ctx context.Context, db *sql.DB) (disarmed bool, err error)
	// InFlightWriters lists the transactions inserting into the outbox now.
	InFlightWriters(ctx context.Context, db *sql.DB) (Writers, error)
	// WritersEnded reports whether every transaction of w has ended.
	WritersEnded(ctx context.Context, db *sql.DB, w Writers) (bool, error)
}

// Operator is the operators' side of a dialect: the state of the outbox
// and the dead-letter tools, behind package admin and the relay's stats,
// dlq and prune commands. Every dialect of this package implements it. It
// is apart from Dialect so that a Dialect of your own (or a test double)
// needs none of it; admin.New asks for it.
type Operator interface {
	// Overview reads the state of the outbox for an operator, with plain
	// reads only (no locks a relay could wait for), in time that does not
	// grow with the outbox: above req.ExactUpTo rows the counts are
	// estimated from a sample.
	Overview(ctx context.Context, db *sql.DB, req OverviewRequest) (Overview, error)
	// ListDeadLetters returns the dead letters f selects, newest first.
	ListDeadLetters(ctx context.Context, db *sql.DB, f DeadLetterFilter) ([]DeadLetter, error)
	// DeadLetterIDs returns the ids of the dead letters f selects, newest
	// first (oldest first with f.OldestFirst).
	DeadLetterIDs(ctx context.Context, db *sql.DB, f DeadLetterFilter) ([]int64, error)
	// DeadLetterSpan counts the dead letters f selects and returns their
	// lowest and highest ids, without reading them into memory.
	DeadLetterSpan(ctx context.Context, db *sql.DB, f DeadLetterFilter) (DeadLetterSpan, error)
	// ReplayDeadLetters moves the dead letters of ids (at most MaxReplayIDs)
	// back into the outbox in one transaction, in id order, as new messages
	// with the same message id (attempts 0, available at once), and returns
	// how many it moved. Ids already gone (replayed or purged meanwhile) are
	// skipped; a concurrent replay of the same ids waits and then skips
	// them. It refuses, and leaves in place, a dead letter whose message id
	// is in the outbox again, and one that has a newer dead letter of the
	// same message id (the newest is replayed), and replays the others:
	// ReplayOutcome.Refused names them. A unique violation (the message id
	// enqueued again during the call) fails the call and changes nothing;
	// calling it again refuses that one.
	ReplayDeadLetters(ctx context.Context, db *sql.DB, ids []int64) (ReplayOutcome, error)
	// DeleteDeadLetters deletes the dead letters of ids (at most
	// MaxReplayIDs) and returns how many it deleted.
	DeleteDeadLetters(ctx context.Context, db *sql.DB, ids []int64) (int64, error)
	// PruneDeadLetters deletes up to limit (at most MaxReplayIDs) of the
	// oldest dead letters dead for longer than olderThan by the database
	// clock, and returns how many it deleted: call it until it returns 0.
	PruneDeadLetters(ctx context.Context, db *sql.DB, olderThan time.Duration, limit int) (int64, error)
}

var _ Operator = (*sqlDialect)(nil)
