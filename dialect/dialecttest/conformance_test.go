package dialecttest_test

import (
	"database/sql"
	"testing"

	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/dialect/dialecttest"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// TestConformance runs the suite against every dialect on its real server:
// TestConformance/postgres, TestConformance/mysql, TestConformance/sqlite.
func TestConformance(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		dialecttest.Run(t, dialecttest.Harness{
			Dialect: dbtest.Dialect(name),
			Open:    func(tb testing.TB) *sql.DB { return dbtest.Open(tb, name).DB },
		})
	})
}
