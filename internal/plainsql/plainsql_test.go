package plainsql_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/plainsql"
)

func TestInsert(t *testing.T) {
	for _, tc := range []struct {
		dialect dialect.Name
		rows    int
		last    string
	}{
		{dialect.NamePostgres, 2, "($8,$9,$10,$11,$12,$13,$14,now(),now())"},
		{dialect.NameMySQL, 1, "(?,?,?,?,?,?,?,UTC_TIMESTAMP(6),UTC_TIMESTAMP(6))"},
	} {
		q := plainsql.Insert(tc.dialect, tc.rows)
		if !strings.HasSuffix(q, tc.last) || strings.Count(q, "),(")+1 != tc.rows {
			t.Errorf("%s, %d rows: %s", tc.dialect, tc.rows, q)
		}
	}
}

func ExampleInsert() {
	fmt.Println(plainsql.Insert(dialect.NameMySQL, 1))
	// Output: INSERT INTO outbox_messages (message_id, topic, msg_key, key_hash, payload, headers, shard, created_at, available_at) VALUES (?,?,?,?,?,?,?,UTC_TIMESTAMP(6),UTC_TIMESTAMP(6))
}
