package admin

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

// Filter selects dead letters. A zero field selects everything; Limit
// alone selects nothing for Replay and Purge (it narrows a filter or
// All, it is not one).
type Filter struct {
	Topic         string    // only this topic
	Since         time.Time // dead at or after Since
	Before        time.Time // dead before Before
	ErrorContains string    // last error contains this text
	Limit         int       // at most this many, the newest; 0 means no limit
}

// narrows reports whether f has a field that narrows the selection, Limit
// aside.
func (f Filter) narrows() bool {
	return f.Topic != "" || !f.Since.IsZero() || !f.Before.IsZero() || f.ErrorContains != ""
}

func (f Filter) dialect() dialect.DeadLetterFilter {
	return dialect.DeadLetterFilter{Topic: f.Topic, Since: f.Since, Before: f.Before,
		ErrorContains: f.ErrorContains, Limit: f.Limit}
}

// Selection is the dead letters a Replay or Purge changes: IDs, or those
// Filter selects, or All (Filter.Limit may narrow All to the newest).
// Exactly one of them must be given.
type Selection struct {
	IDs    []int64
	Filter Filter
	All    bool
	// SkipMissing, with IDs, changes the ids that exist and reports the
	// others in Result.Missing (a replay run again after a crash). Without
	// it, an id that does not exist is an *UnknownIDsError and nothing
	// changes.
	SkipMissing bool
}

// Refusal is a dead letter that Replay left in place, and why
// (Refusal.Reason).
type Refusal = dialect.Refusal

// Result is what a Replay or Purge did.
type Result struct {
	Selected int   // dead letters selected when it started
	Done     int64 // replayed or purged
	// Gone were selected but had gone when their chunk ran: replayed or
	// purged meanwhile by someone else.
	Gone int64
	// Missing are ids given that did not exist when it started (only with
	// Selection.SkipMissing): already replayed or purged (a run again after
	// a crash), or never existing.
	Missing []int64
	// Refused are the dead letters Replay left in place, oldest first.
	Refused []Refusal
}

// ListDeadLetters returns the dead letters f selects, newest first.
func (a *Admin) ListDeadLetters(ctx context.Context, f Filter) ([]DeadLetter, error) {
	dls, err := a.d.ListDeadLetters(ctx, a.db, f.dialect())
	return dls, wrap("listing dead letters", err)
}

// Plan is what a Replay or Purge of a selection would change, as the
// dead-letter table stands now.
type Plan struct {
	Count     int64   // dead letters selected
	Low, High int64   // their lowest and highest ids; 0 when Count is 0
	Missing   []int64 // ids given that do not exist, sorted
	ids       []int64 // ids given that exist, sorted
	filter    dialect.DeadLetterFilter
}

// Plan returns what a Replay or Purge of sel would change now, reading no
// more than a count (and, for ids, which of them exist). An id that does
// not exist makes an *UnknownIDsError naming all those missing, unless
// sel.SkipMissing: then they are Plan.Missing.
func (a *Admin) Plan(ctx context.Context, sel Selection) (Plan, error) {
	if err := sel.check(); err != nil {
		return Plan{}, err
	}
	if len(sel.IDs) > 0 {
		found, err := a.existing(ctx, sel.IDs)
		if err != nil {
			return Plan{}, wrap("selecting dead letters", err)
		}
		slices.Sort(found)
		found = slices.Compact(found)
		missing := missingIDs(sel.IDs, found)
		if len(missing) > 0 && !sel.SkipMissing {
			return Plan{}, &UnknownIDsError{IDs: missing}
		}
		if len(found) == 0 {
			return Plan{Missing: missing}, nil
		}
		return Plan{Count: int64(len(found)), Low: found[0], High: found[len(found)-1], Missing: missing, ids: found}, nil
	}
	f := sel.Filter.dialect()
	sp, err := a.d.DeadLetterSpan(ctx, a.db, f)
	if err != nil {
		return Plan{}, wrap("selecting dead letters", err)
	}
	// The newest Limit are those in [Low, High] now: later dead letters
	// have higher ids, and are not selected.
	f.Limit = 0
	return Plan{Count: sp.Count, Low: sp.Low, High: sp.High, filter: f}, nil
}

// check says whether sel selects something, one way.
func (sel Selection) check() error {
	given := 0
	for _, g := range []bool{len(sel.IDs) > 0, sel.Filter.narrows(), sel.All} {
		if g {
			given++
		}
	}
	switch {
	case given == 0:
		return ErrEmptySelection
	case given > 1:
		return fmt.Errorf("%w: give ids, a filter or All, only one of them", ErrInvalidArgument)
	case len(sel.IDs) > 0 && sel.Filter.Limit != 0:
		return fmt.Errorf("%w: a limit applies to a filter or All, not to ids", ErrInvalidArgument)
	case sel.Filter.Limit < 0:
		return fmt.Errorf("%w: the limit cannot be negative", ErrInvalidArgument)
	case sel.SkipMissing && len(sel.IDs) == 0:
		return fmt.Errorf("%w: SkipMissing applies to ids, not to a filter or All", ErrInvalidArgument)
	}
	return nil
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
//
// It leaves in place, and names in Result.Refused, a dead letter whose
// message id is in the outbox again, and one that has a newer dead letter
// of the same message id (the newest is the one replayed); it replays the
// others and returns a *RefusedError at the end. An id given that does
// not exist fails before anything changes (*UnknownIDsError), unless
// sel.SkipMissing: then those ids are Result.Missing and the others are
// replayed (a replay run again after a crash: they were replayed). Run it
// again after a crash (with SkipMissing if by ids): what was replayed is
// gone from the dead-letter table, so nothing is replayed twice.
func (a *Admin) Replay(ctx context.Context, sel Selection) (Result, error) {
	return a.inChunks(ctx, sel, "replaying dead letters", a.d.ReplayDeadLetters)
}

// Purge deletes the dead letters sel selects, in chunks of
// Config.ChunkSize, as Replay does (without refusals).
func (a *Admin) Purge(ctx context.Context, sel Selection) (Result, error) {
	return a.inChunks(ctx, sel, "purging dead letters", func(ctx context.Context, db *sql.DB, ids []int64) (dialect.ReplayOutcome, error) {
		n, err := a.d.DeleteDeadLetters(ctx, db, ids)
		return dialect.ReplayOutcome{Replayed: n}, err
	})
}

// chunkFunc replays or purges one chunk of ids, in one transaction.
type chunkFunc func(context.Context, *sql.DB, []int64) (dialect.ReplayOutcome, error)

func (a *Admin) inChunks(ctx context.Context, sel Selection, op string, do chunkFunc) (Result, error) {
	p, err := a.Plan(ctx, sel)
	if err != nil {
		return Result{}, err
	}
	res := Result{Selected: int(p.Count), Missing: p.Missing}
	if p.Count == 0 {
		return res, nil
	}
	next := a.pages(p)
	for {
		ids, err := next(ctx)
		if err != nil || len(ids) == 0 {
			return res.end(wrap(op, err))
		}
		var out dialect.ReplayOutcome
		err = a.retry(ctx, func() (err error) {
			out, err = do(ctx, a.db, ids)
			return err
		})
		if err != nil {
			return res.end(wrap(op, err))
		}
		res.Done += out.Replayed
		res.Refused = append(res.Refused, out.Refused...)
		res.Gone += int64(len(ids)) - out.Replayed - int64(len(out.Refused))
	}
}

// end returns res and err, or a *RefusedError if err is nil and some dead
// letters were refused.
func (res Result) end(err error) (Result, error) {
	if err == nil && len(res.Refused) > 0 {
		err = &RefusedError{Refused: res.Refused}
	}
	return res, err
}

// pages returns a function that returns the next chunk of the ids p
// selects, oldest first, and none at the end. Given ids are chunked as they
// are; a filter is walked by id (id > the last one, up to p.High), a chunk
// at a time, so that a large selection is never held in memory and a dead
// letter refused stays behind instead of stalling the walk.
func (a *Admin) pages(p Plan) func(context.Context) ([]int64, error) {
	if p.ids != nil {
		rest := p.ids
		return func(context.Context) ([]int64, error) {
			c := rest[:min(len(rest), a.cfg.ChunkSize)]
			rest = rest[len(c):]
			return c, nil
		}
	}
	f := p.filter
	f.AfterID, f.UpToID, f.OldestFirst, f.Limit = p.Low-1, p.High, true, a.cfg.ChunkSize
	return func(ctx context.Context) ([]int64, error) {
		if f.AfterID >= f.UpToID {
			return nil, nil
		}
		ids, err := a.d.DeadLetterIDs(ctx, a.db, f)
		if len(ids) > 0 {
			f.AfterID = ids[len(ids)-1]
		} else {
			f.AfterID = f.UpToID
		}
		return ids, err
	}
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
		var n int64
		err := a.retry(ctx, func() (err error) {
			n, err = a.d.PruneDeadLetters(ctx, a.db, olderThan, a.cfg.ChunkSize)
			return err
		})
		total += n
		if err != nil || n == 0 {
			return total, wrap("pruning dead letters", err)
		}
	}
}
