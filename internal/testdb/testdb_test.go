package testdb_test

import (
	"context"
	"testing"

	"github.com/outboxrelay/outbox/internal/testdb"
)

func TestOpenAll(t *testing.T) {
	for _, name := range testdb.Names {
		t.Run(name, func(t *testing.T) {
			db := testdb.Open(t, name)
			if err := db.Dialect.EnsureShards(context.Background(), db.DB, 8); err != nil {
				t.Fatal(err)
			}
			s, err := db.Dialect.Stats(context.Background(), db.DB)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", s)
		})
	}
}
