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
	// ErrRefused: Replay left some dead letters in place (and replayed
	// the others). errors.As to *RefusedError names them and says why.
	ErrRefused = errors.New("outbox admin: dead letters not replayed")
	// ErrPendingAgain: a dead letter was not replayed because its message
	// id is in the outbox again. A *RefusedError wraps it when that is
	// among its reasons.
	ErrPendingAgain = dialect.ErrPendingAgain
)

// RefusedError names the dead letters that Replay left in place, and why.
type RefusedError struct {
	Refused []Refusal
}

func (e *RefusedError) Error() string {
	s := fmt.Sprintf("outbox admin: %d dead letters not replayed:", len(e.Refused))
	for i, r := range e.Refused {
		if i == 20 {
			s += fmt.Sprintf(" and %d more", len(e.Refused)-i)
			break
		}
		if i > 0 {
			s += ";"
		}
		s += fmt.Sprintf(" %d (message id %s): %s", r.ID, r.MessageID, r.Reason())
	}
	return s
}

// Unwrap returns ErrRefused, and ErrPendingAgain if a message id pending
// again is among the reasons.
func (e *RefusedError) Unwrap() []error {
	errs := []error{ErrRefused}
	for _, r := range e.Refused {
		if r.NewerID == 0 {
			return append(errs, ErrPendingAgain)
		}
	}
	return errs
}

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
