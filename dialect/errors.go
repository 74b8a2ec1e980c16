package dialect

import (
	"errors"
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
