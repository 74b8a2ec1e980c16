package dialect_test

import (
	"testing"

	"github.com/outboxrelay/outbox/dialect"
)

// TestOperator checks that every dialect of the package has the operators'
// statements, so that the conformance suite never skips them here.
func TestOperator(t *testing.T) {
	for _, d := range []dialect.Dialect{dialect.Postgres(), dialect.MySQL(), dialect.SQLite()} {
		if _, ok := d.(dialect.Operator); !ok {
			t.Errorf("%s does not implement dialect.Operator", d.Name())
		}
	}
}
