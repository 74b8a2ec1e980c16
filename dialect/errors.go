package dialect

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// IsUniqueViolation reports whether err is a unique-constraint violation
// from PostgreSQL (SQLSTATE 23505: lib/pq and pgx expose SQLState), MySQL or
// MariaDB (error 1062) or SQLite (UNIQUE constraint failed). It is the one
// place that knows the drivers' error forms, without importing them.
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	var st interface{ SQLState() string }
	if errors.As(err, &st) && st.SQLState() == "23505" {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "Error 1062") || strings.Contains(s, "Duplicate entry") ||
		strings.Contains(s, "UNIQUE constraint failed") || strings.Contains(s, "23505")
}

// IsMissingTable reports whether err says an outbox table does not exist:
// PostgreSQL SQLSTATE 42P01, MySQL/MariaDB error 1146, SQLite "no such
// table". It usually means the migrations were not applied.
func IsMissingTable(err error) bool {
	if err == nil {
		return false
	}
	var st interface{ SQLState() string }
	if errors.As(err, &st) && st.SQLState() == "42P01" {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "Error 1146") || strings.Contains(s, "no such table") ||
		(strings.Contains(s, "relation") && strings.Contains(s, "does not exist"))
}

// ErrPendingAgain is wrapped by PendingAgainError: a dead letter cannot be
// replayed because a message with its message id is in the outbox again.
var ErrPendingAgain = errors.New("dialect: message id pending again")

// PendingAgainError names the dead letters that a replay refused because
// their message ids are in the outbox again; the replay changed nothing.
type PendingAgainError struct {
	IDs        []int64  // dead-letter ids
	MessageIDs []string // their message ids, when known
	err        error    // the unique violation, when that is how it showed
}

func (e *PendingAgainError) Error() string {
	s := fmt.Sprintf("dead letters %s: message id pending again in the outbox", joinIDs(e.IDs))
	if len(e.MessageIDs) > 0 {
		s += " (" + strings.Join(e.MessageIDs, ", ") + ")"
	}
	return s
}

// Unwrap returns ErrPendingAgain and the driver's error, if any.
func (e *PendingAgainError) Unwrap() []error { return []error{ErrPendingAgain, e.err} }

// TooManyIDsError is a call with more ids than one transaction takes.
type TooManyIDsError struct{ N, Max int }

func (e *TooManyIDsError) Error() string {
	return fmt.Sprintf("dialect: %d ids in one call, at most %d", e.N, e.Max)
}

// joinIDs writes ids as "1, 2, 3", eliding past 20.
func joinIDs(ids []int64) string {
	var b strings.Builder
	for i, id := range ids {
		if i == 20 {
			fmt.Fprintf(&b, " and %d more", len(ids)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	return b.String()
}
