package dialect

import (
	"errors"
	"fmt"
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

// ErrPendingAgain means that a dead letter cannot be replayed because a
// message with its message id is in the outbox again.
var ErrPendingAgain = errors.New("dialect: message id pending again")

// TooManyIDsError is a call with more ids than one transaction takes.
type TooManyIDsError struct{ N, Max int }

func (e *TooManyIDsError) Error() string {
	return fmt.Sprintf("dialect: %d ids in one call, at most %d", e.N, e.Max)
}

// IsContention reports whether err is transient lock contention, worth
// running the same short transaction again: a deadlock victim or a
// serialization failure (PostgreSQL SQLSTATE 40P01, 40001; MySQL and
// MariaDB errors 1213 and 1205, lock wait timeout), or SQLite's busy and
// locked errors.
func IsContention(err error) bool {
	if err == nil {
		return false
	}
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		switch st.SQLState() {
		case "40P01", "40001":
			return true
		}
	}
	s := err.Error()
	for _, m := range []string{"Error 1213", "Error 1205", "Deadlock found", "Lock wait timeout",
		"deadlock detected", "could not serialize access", "database is locked", "SQLITE_BUSY", "(SQLITE_BUSY)",
		"database table is locked", "SQLITE_LOCKED"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}
