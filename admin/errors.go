package admin

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/outboxrelay/outbox/dialect"
)

// Errors of the admin API. Every error it returns for bad input wraps one
// of them (errors.Is), and changed nothing.
var (
	// ErrUnknownIDs: some of the dead-letter ids asked for do not exist.
	// errors.As to *UnknownIDsError names them.
	ErrUnknownIDs = errors.New("outbox admin: unknown dead-letter ids")
	// ErrEmptySelection: a Replay or Purge with neither ids nor a filter
	// nor All, refused so that a missing flag cannot empty the table.
	ErrEmptySelection = errors.New("outbox admin: no dead letters selected (give ids, a filter, or All)")
	// ErrInvalidArgument: an argument out of range (a negative age, ids
	// together with a filter).
	ErrInvalidArgument = errors.New("outbox admin: invalid argument")
	// ErrPendingAgain: a dead letter cannot be replayed because its message
	// id is in the outbox again. errors.As to *PendingAgainError names the
	// dead letters.
	ErrPendingAgain = dialect.ErrPendingAgain
)

// PendingAgainError names the dead letters whose message ids are in the
// outbox again; the chunk that held them was not replayed.
type PendingAgainError = dialect.PendingAgainError

// UnknownIDsError names dead-letter ids that do not exist.
type UnknownIDsError struct {
	IDs []int64
}

func (e *UnknownIDsError) Error() string {
	s := make([]string, len(e.IDs))
	for i, id := range e.IDs {
		s[i] = strconv.FormatInt(id, 10)
	}
	return fmt.Sprintf("outbox admin: no dead letter with id %s (nothing changed)", strings.Join(s, ", "))
}

// Unwrap returns ErrUnknownIDs.
func (e *UnknownIDsError) Unwrap() error { return ErrUnknownIDs }
