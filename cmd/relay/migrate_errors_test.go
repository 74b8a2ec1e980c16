package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/lib/pq"

	"github.com/outboxrelay/outbox/migrations"
)

// The translated errors of relay migrate still unwrap to the driver's and
// the migrations package's errors.
func TestExplainMigrateErrorUnwraps(t *testing.T) {
	pqErr := &pq.Error{Code: "42501", Message: "permission denied for schema public"}
	err := explainMigrateError(fmt.Errorf("create version table: %w", pqErr), "postgres://h/db")
	var got *pq.Error
	if !errors.As(err, &got) || got != pqErr {
		t.Errorf("%v does not unwrap to the *pq.Error", err)
	}
	err = explainMigrateError(fmt.Errorf("failed to initialize: %w", &migrations.LockTimeoutError{Waited: 1}), "postgres://h/db")
	if !errors.Is(err, migrations.ErrLockTimeout) {
		t.Errorf("%v does not unwrap to migrations.ErrLockTimeout", err)
	}
}
