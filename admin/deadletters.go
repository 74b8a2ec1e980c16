package admin

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

// Filter selects dead letters. A zero field selects everything.
type Filter struct {
	Topic         string    // only this topic
	Since         time.Time // dead at or after Since
	Before        time.Time // dead before Before
	ErrorContains string    // last error contains this text
	Limit         int       // at most this many, the newest; 0 means no limit
}

func (f Filter) isZero() bool { return f == Filter{} }

func (f Filter) dialect() dialect.DeadLetterFilter {
	return dialect.DeadLetterFilter{Topic: f.Topic, Since: f.Since, Before: f.Before,
		ErrorContains: f.ErrorContains, Limit: f.Limit}
}

// Selection is the dead letters a Replay or Purge changes: IDs, or those
// Filter selects, or All. Exactly one of them must be given.
type Selection struct {
	IDs    []int64
	Filter Filter
	All    bool
}

// Result is what a Replay or Purge did.
type Result struct {
	Selected int   // dead letters selected when it started
	Done     int64 // replayed or purged
	// Gone were selected but had gone when their chunk ran: replayed or
	// purged meanwhile by someone else.
	Gone int64
}

// ListDeadLetters returns the dead letters f selects, newest first.
func (a *Admin) ListDeadLetters(ctx context.Context, f Filter) ([]DeadLetter, error) {
	dls, err := a.d.ListDeadLetters(ctx, a.db, f.dialect())
	return dls, wrap("listing dead letters", err)
}

// Select returns the ids of the dead letters sel selects, oldest first. Ids
// that do not exist make an *UnknownIDsError.
func (a *Admin) Select(ctx context.Context, sel Selection) ([]int64, error) {
	given := 0
	for _, g := range []bool{len(sel.IDs) > 0, !sel.Filter.isZero(), sel.All} {
		if g {
			given++
		}
	}
	switch {
	case given == 0:
		return nil, ErrEmptySelection
	case given > 1:
		return nil, fmt.Errorf("%w: give ids, a filter or All, only one of them", ErrInvalidArgument)
	}
	f := sel.Filter.dialect()
	var found []int64
	var err error
	if len(sel.IDs) > 0 {
		found, err = a.existing(ctx, sel.IDs)
	} else {
		found, err = a.d.DeadLetterIDs(ctx, a.db, f)
	}
	if err != nil {
		return nil, wrap("selecting dead letters", err)
	}
	slices.Sort(found)
	if missing := missingIDs(sel.IDs, found); len(missing) > 0 {
		return nil, &UnknownIDsError{IDs: missing}
	}
	return found, nil
}

// existing returns which of ids exist, asking a chunk at a time.
func (a *Admin) existing(ctx context.Context, ids []int64) ([]int64, error) {
	var found []int64
	for c := range slices.Chunk(ids, dialect.MaxReplayIDs) {
		got, err := a.d.DeadLetterIDs(ctx, a.db, dialect.DeadLetterFilter{IDs: c})
		if err != nil {
			return nil, err
		}
		found = append(found, got...)
	}
	return found, nil
}

// missingIDs returns the ids of want not in sortedHave, sorted, once each.
func missingIDs(want, sortedHave []int64) []int64 {
	var missing []int64
	for _, id := range want {
		if _, ok := slices.BinarySearch(sortedHave, id); !ok {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	return slices.Compact(missing)
}

// Replay moves the dead letters sel selects back into the outbox, oldest
// first, in chunks of Config.ChunkSize, each one transaction: the same
// message id, key, value and headers, attempts reset, available at once.
// Unknown ids fail before anything changes. A dead letter whose message id
// is in the outbox again fails its chunk with a *PendingAgainError; the
// chunks before it stay replayed (Result.Done says how many), the rest are
// not tried. Run it again after a crash: what was replayed is gone from the
// dead-letter table, so nothing is replayed twice.
func (a *Admin) Replay(ctx context.Context, sel Selection) (Result, error) {
	return a.inChunks(ctx, sel, "replaying dead letters", a.d.ReplayDeadLetters)
}

// Purge deletes the dead letters sel selects, in chunks of
// Config.ChunkSize. Unknown ids fail before anything changes.
func (a *Admin) Purge(ctx context.Context, sel Selection) (Result, error) {
	return a.inChunks(ctx, sel, "purging dead letters", a.d.DeleteDeadLetters)
}

func (a *Admin) inChunks(ctx context.Context, sel Selection, op string,
	do func(context.Context, *sql.DB, []int64) (int64, error)) (Result, error) {
	ids, err := a.Select(ctx, sel)
	if err != nil {
		return Result{}, err
	}
	res := Result{Selected: len(ids)}
	for c := range slices.Chunk(ids, a.cfg.ChunkSize) {
		n, err := do(ctx, a.db, c)
		if err != nil {
			return res, wrap(op, err)
		}
		res.Done += n
		res.Gone += int64(len(c)) - n
	}
	return res, nil
}

// PruneDeadLetters deletes the dead letters dead for longer than olderThan
// (by the database clock), in chunks of Config.ChunkSize, each its own
// short statement, and returns how many it deleted.
func (a *Admin) PruneDeadLetters(ctx context.Context, olderThan time.Duration) (int64, error) {
	if olderThan < 0 {
		return 0, fmt.Errorf("%w: the age to prune cannot be negative, got %s", ErrInvalidArgument, olderThan)
	}
	var total int64
	for {
		n, err := a.d.PruneDeadLetters(ctx, a.db, olderThan, a.cfg.ChunkSize)
		total += n
		if err != nil || n == 0 {
			return total, wrap("pruning dead letters", err)
		}
	}
}
