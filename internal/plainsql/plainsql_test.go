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

func TestInsertInto(t *testing.T) {
	q := plainsql.InsertInto("bench_plain_outbox", dialect.NamePostgres, 1)
	if want := "INSERT INTO bench_plain_outbox (message_id, topic, msg_key, key_hash, payload, headers, shard, created_at, available_at) VALUES ($1,$2,$3,$4,$5,$6,$7,now(),now())"; q != want {
		t.Errorf("got  %s\nwant %s", q, want)
	}
	if q, want := plainsql.Insert(dialect.NameMySQL, 2), plainsql.InsertInto(dialect.TableMessages, dialect.NameMySQL, 2); q != want {
		t.Errorf("Insert %s, InsertInto the outbox table %s", q, want)
	}
}

func ExampleInsert() {
	fmt.Println(plainsql.Insert(dialect.NameMySQL, 1))
	// Output: INSERT INTO outbox_messages (message_id, topic, msg_key, key_hash, payload, headers, shard, created_at, available_at) VALUES (?,?,?,?,?,?,?,UTC_TIMESTAMP(6),UTC_TIMESTAMP(6))
}
