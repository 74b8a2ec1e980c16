package dialect_test

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// lockingStatements are the relay's statements that lock rows of the
// outbox table, by the name of their golden file.
var lockingStatements = []string{"ack", "retry", "dead_letter_lock", "dead_letter_copy", "dead_letter_delete"}

// TestExplainMySQL asks MariaDB/MySQL for the plan of every statement of
// the relay that locks outbox rows, as the golden files in testdata/mysql
// hold them (TestGolden keeps those equal to the builders' output), on the
// shape that made InnoDB scan: statistics taken on the empty table, then a
// few hundred rows, and an id list that covers much of it. Each must reach
// its rows through the primary key (eq_ref on PRIMARY), never by a scan: a
// locking scan waits on every uncommitted insert it meets, rows the relay
// did not ask for. The plans are kept in testdata/mysql/explain/*.txt
// (go test ./dialect -run TestExplainMySQL -update rewrites them).
//
// PostgreSQL has no such test: an uncommitted row is invisible to its
// statements, which never wait on it whatever their plan (MVCC); SQLite has
// one writer at a time. The conformance suite's LateCommitterBlocksNothing
// checks the behaviour itself on all three.
func TestExplainMySQL(t *testing.T) {
	db := dbtest.Open(t, "mysql")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("ANALYZE TABLE " + dialect.TableMessages)
	for i := range 300 {
		exec("INSERT INTO "+dialect.TableMessages+" (message_id, topic, msg_key, key_hash, payload, shard, created_at, available_at)"+
			" VALUES (?, 't', 'k', 1, 'v', 3, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))", fmt.Sprint("m", i))
	}
	for _, name := range lockingStatements {
		t.Run(name, func(t *testing.T) {
			q, args := goldenStatement(t, filepath.Join("testdata", "mysql", name+".sql"))
			// Cover much of the table, as an ack of a whole batch does.
			q = strings.ReplaceAll(q, "'[101,102]'", "'[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]'")
			q = strings.ReplaceAll(q, "'[101,102,103]'", "'[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]'")
			got := explain(t, ctx, db.DB, q, args)
			path := filepath.Join("testdata", "mysql", "explain", name+".txt")
			if updating() {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if got != string(want) {
				t.Errorf("plan of %s changed:\n--- %s\n%s--- now\n%s", name, path, want, got)
			}
			for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
				if strings.HasPrefix(line, "m ") && !strings.HasPrefix(line, "m eq_ref PRIMARY") {
					t.Errorf("%s reaches outbox rows with %q, not by primary key: a locking scan waits on rows it did not ask for", name, line)
				}
			}
		})
	}
}

// updating reports whether -update was given (the flag is golden_test.go's,
// in the same test binary).
func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// goldenStatement reads a golden file back into the statement and its
// arguments: comment lines and the server-side bound dropped, line breaks
// undone.
func goldenStatement(t *testing.T, path string) (string, []any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sqlLines []string
	var args []any
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case strings.HasPrefix(line, "-- args:"):
			args = parseArgs(t, strings.TrimPrefix(line, "-- args:"))
		case strings.HasPrefix(line, "--"), line == "":
		default:
			sqlLines = append(sqlLines, line)
		}
	}
	q := strings.TrimSuffix(strings.Join(sqlLines, " "), ";")
	q = regexp.MustCompile(`^/\*M! SET STATEMENT [^*]*\*/ `).ReplaceAllString(q, "")
	return q, args
}

// parseArgs reads the args line of a golden file: integers and quoted
// strings.
func parseArgs(t *testing.T, s string) []any {
	var out []any
	for _, m := range regexp.MustCompile(`"(?:[^"\\]|\\.)*"|-?\d+`).FindAllString(s, -1) {
		if strings.HasPrefix(m, `"`) {
			v, err := strconv.Unquote(m)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
			continue
		}
		n, _ := strconv.ParseInt(m, 10, 64)
		out = append(out, n)
	}
	return out
}

// explain returns "table type key" per row of the plan of q.
func explain(t *testing.T, ctx context.Context, db *sql.DB, q string, args []any) string {
	t.Helper()
	var b strings.Builder
	queryRows(t, ctx, db, "EXPLAIN "+q, args, func(cols []string, vals []sql.NullString) {
		get := func(name string) string {
			for i, c := range cols {
				if c == name {
					if vals[i].Valid {
						return vals[i].String
					}
					return "NULL"
				}
			}
			return "?"
		}
		fmt.Fprintf(&b, "%s %s %s\n", get("table"), get("type"), get("key"))
	})
	return b.String()
}
