package dialecttest_test

import (
	"database/sql"
	"testing"

	"github.com/outboxrelay/outbox/dialect/dialecttest"
	"github.com/outboxrelay/outbox/internal/testdb"
)

// TestConformance runs the suite against every dialect on its real server:
// TestConformance/postgres, TestConformance/mysql, TestConformance/sqlite.
func TestConformance(t *testing.T) {
	for _, name := range testdb.Names {
		t.Run(name, func(t *testing.T) {
			dialecttest.Run(t, dialecttest.Harness{
				Dialect: testdb.Dialect(name),
				Open:    func(tb testing.TB) *sql.DB { return testdb.Open(tb, name).DB },
			})
		})
	}
}
