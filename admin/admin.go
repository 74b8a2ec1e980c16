// Package admin is the operators' API of the outbox: what stands behind
// "relay stats", "relay dlq" and "relay prune", for applications that
// offer the same in their own admin pages.
//
// Stats reads the state of the outbox (pending per topic and shard,
// retries, dead letters, relays) with plain reads that take no lock a
// relay waits for, in time that does not grow with the outbox. The
// dead-letter tools list, show, replay, purge and prune the dead-letter
// table. Replay moves dead letters back into the outbox in chunks, each
// one transaction: a crash loses nothing and replays nothing twice, and
// two replays at once replay each dead letter once. A replayed message
// keeps its message id (the outbox-id header) and goes out after the
// messages of its key that were published meanwhile.
package admin

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
)

// Defaults of Config.
const (
	DefaultChunkSize  = 500
	DefaultLiveWithin = outbox.DefaultLeaseDuration
)

// Config configures an Admin. The zero value is valid.
type Config struct {
	// ChunkSize is how many dead letters Replay, Purge and
	// PruneDeadLetters change per transaction (1 to dialect.MaxReplayIDs).
	// Default 500.
	ChunkSize int
	// LiveWithin is the longest heartbeat age of a relay counted alive.
	// Set it to the relays' lease duration. Default 15s.
	LiveWithin time.Duration
	// Sample is how many messages waiting for a retry Stats lists.
	// Default 10.
	Sample int
	// ExactUpTo is the largest outbox Stats counts exactly; above it the
	// pending counts are estimated from a sample. Default 100,000.
	ExactUpTo int
	// Cap is the most messages waiting for a retry, and the most dead
	// letters, that Stats reads to count them, and to group the dead
	// letters per topic. Default 10,000. (The waiting messages listed and
	// their errors are of at most 1,000 of them: Stats.SampledFrom.)
	Cap int
	// StepTimeout bounds each part of Stats. Default 5s.
	StepTimeout time.Duration
}

// Admin runs the operators' queries and changes on one database.
// It is safe for concurrent use.
type Admin struct {
	db  *sql.DB
	d   dialect.Operator
	cfg Config
}

// New returns an Admin of the outbox tables in db, of dialect d, which
// must implement dialect.Operator (every dialect of package dialect does).
func New(db *sql.DB, d dialect.Dialect, cfg Config) (*Admin, error) {
	if db == nil || d == nil {
		return nil, fmt.Errorf("%w: New needs a database and a dialect", ErrInvalidArgument)
	}
	op, ok := d.(dialect.Operator)
	if !ok {
		return nil, fmt.Errorf("%w: dialect %s does not implement dialect.Operator", ErrInvalidArgument, d.Name())
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.ChunkSize < 1 || cfg.ChunkSize > dialect.MaxReplayIDs {
		return nil, fmt.Errorf("%w: ChunkSize must be between 1 and %d, got %d", ErrInvalidArgument, dialect.MaxReplayIDs, cfg.ChunkSize)
	}
	if cfg.LiveWithin == 0 {
		cfg.LiveWithin = DefaultLiveWithin
	}
	if cfg.LiveWithin < 0 || cfg.Sample < 0 || cfg.ExactUpTo < 0 || cfg.Cap < 0 || cfg.StepTimeout < 0 {
		return nil, fmt.Errorf("%w: LiveWithin, Sample, ExactUpTo, Cap and StepTimeout cannot be negative", ErrInvalidArgument)
	}
	return &Admin{db: db, d: op, cfg: cfg}, nil
}

// DeadLetter is a row of the dead-letter table.
type DeadLetter = dialect.DeadLetter

// GetDeadLetter returns the dead letter id, or an *UnknownIDsError.
func (a *Admin) GetDeadLetter(ctx context.Context, id int64) (DeadLetter, error) {
	dls, err := a.d.ListDeadLetters(ctx, a.db, dialect.DeadLetterFilter{IDs: []int64{id}})
	if err != nil {
		return DeadLetter{}, fmt.Errorf("outbox admin: reading dead letter %d: %w", id, err)
	}
	if len(dls) == 0 {
		return DeadLetter{}, &UnknownIDsError{IDs: []int64{id}}
	}
	return dls[0], nil
}

// wrap adds the operation to a database error; the package's own errors
// pass unchanged.
func wrap(op string, err error) error {
	if err == nil || errors.Is(err, ErrUnknownIDs) || errors.Is(err, ErrRefused) ||
		errors.Is(err, ErrEmptySelection) || errors.Is(err, ErrInvalidArgument) {
		return err
	}
	return fmt.Errorf("outbox admin: %s: %w", op, err)
}
