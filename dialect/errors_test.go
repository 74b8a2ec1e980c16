package dialect_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/outboxrelay/outbox/dialect"
)

type sqlStateErr string

func (e sqlStateErr) Error() string    { return "pq: " + string(e) }
func (e sqlStateErr) SQLState() string { return string(e) }

func TestIsContention(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{sqlStateErr("40P01"), true}, // deadlock_detected
		{sqlStateErr("40001"), true}, // serialization_failure
		{fmt.Errorf("replaying: %w", sqlStateErr("40P01")), true},
		{sqlStateErr("23505"), false},
		{errors.New("Error 1213 (40001): Deadlock found when trying to get lock; try restarting transaction"), true},
		{errors.New("Error 1205 (HY000): Lock wait timeout exceeded; try restarting transaction"), true},
		{errors.New("database is locked (5) (SQLITE_BUSY)"), true},
		{errors.New("Error 1062 (23000): Duplicate entry 'x' for key 'message_id'"), false},
		{errors.New("connection refused"), false},
	} {
		if got := dialect.IsContention(tc.err); got != tc.want {
			t.Errorf("IsContention(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
