package dialect

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sq "github.com/Masterminds/squirrel"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestGolden writes every statement of every dialect, as the real builders
// make it from fixed inputs, to testdata/<dialect>/<statement>.sql and
// compares: a reviewer reads and diffs a dialect's SQL there, whole. After a
// deliberate change, refresh them with
//
//	go test ./dialect -run TestGolden -update
func TestGolden(t *testing.T) {
	for _, d := range []*sqlDialect{Postgres().(*sqlDialect), MySQL().(*sqlDialect), SQLite().(*sqlDialect)} {
		t.Run(string(d.Name()), func(t *testing.T) {
			dir := filepath.Join("testdata", string(d.Name()))
			want := map[string]bool{}
			for _, g := range goldenStatements(d) {
				name := g.name + ".sql"
				want[name] = true
				got := g.render()
				path := filepath.Join(dir, name)
				if *update {
					if err := os.MkdirAll(dir, 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				old, err := os.ReadFile(path)
				if err != nil {
					t.Errorf("%s: %v (run go test ./dialect -run TestGolden -update)", path, err)
					continue
				}
				if string(old) != got {
					t.Errorf("%s changed:\n--- golden\n%s\n--- now\n%s\n(run go test ./dialect -run TestGolden -update if the change is meant)", path, old, got)
				}
			}
			// No stale file is left behind for a statement that is gone.
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if e.IsDir() {
					continue // explain/: TestExplainMySQL's
				}
				if !want[e.Name()] && !*update {
					t.Errorf("%s: no statement writes it any more; delete it", filepath.Join(dir, e.Name()))
				} else if !want[e.Name()] {
					_ = os.Remove(filepath.Join(dir, e.Name()))
				}
			}
		})
	}
}

type golden struct {
	name, about string
	sql         string
	args        []any
}

func fromSq(name, about string, s sq.Sqlizer) golden {
	q, args, err := s.ToSql()
	if err != nil {
		q = "ERROR: " + err.Error()
	}
	return golden{name: name, about: about, sql: q, args: args}
}

// goldenStatements builds every statement d runs, in the order a relay's
// life runs them; the relay's own statements as they go to the server with
// 30 s left before their context's deadline.
func goldenStatements(d *sqlDialect) []golden {
	rows := []InsertRow{
		{MessageID: "0190b6d1-5b1a-7000-8000-000000000001", Topic: "orders", Key: []byte("order-1"), KeyHash: 1234567,
			Value: []byte(`{"it's":1}`), Headers: []byte{1, 1, 2, 'c', 't'}, Shard: 7},
		{MessageID: "a'b\\c", Topic: "orders.v2", Shard: 3, Delay: 1500 * time.Millisecond},
	}
	leases := []Lease{{Shard: 3, Fence: 41}, {Shard: 9, Fence: 2}}
	var out []golden
	add := func(g golden) {
		if g.name != "insert" && g.name != "insert_bound" && g.name != "max_pending_shard" && d.f.boundOnServer {
			// A relay statement, run with a context 30 s from its deadline.
			g.sql = d.boundedFor(30*time.Second, g.sql)
		}
		out = append(out, g)
	}
	q, args := d.insertSQL(rows, d.f.bytesLiteral == nil)
	add(golden{name: "insert", about: "Enqueue: one multi-row INSERT (a keyed message, and a keyless one delayed by 1.5 s)", sql: q, args: args})
	if d.f.bytesLiteral != nil {
		q, args = d.insertSQL(rows, true)
		add(golden{name: "insert_bound", about: "Enqueue above 4 MiB of payload: the values bound", sql: q, args: args})
	}
	add(fromSq("shard_count", "EnsureShards: do the shard rows exist?", d.shardCountSQL(64)))
	add(fromSq("ensure_shards", "EnsureShards: create the missing ones (3 here)", d.ensureShardsSQL(3)))
	add(fromSq("heartbeat", "Heartbeat: this relay is alive", d.heartbeatSQL("relay-1")))
	add(fromSq("prune_relays", "Heartbeat (transaction on MySQL): forget relays silent for longer than the lease (15 s)", d.pruneRelaysSQL(15*time.Second)))
	add(fromSq("live_relays", "Heartbeat: how many relays are alive", d.liveRelaysSQL()))
	if d.f.returning {
		add(fromSq("acquire", "Acquire: take up to 5 free or expired shards", d.acquireSQL("relay-1", 5, 15*time.Second)))
		add(fromSq("renew", "Renew: extend the leases still held with their fence", d.renewSQL("relay-1", leases, 15*time.Second).Suffix(returningLeases)))
	} else {
		add(fromSq("acquire_lock", "Acquire (transaction): lock up to 5 free or expired shards", d.freeShards(5, false)))
		add(fromSq("acquire_take", "Acquire (transaction): take the locked shards", d.takeShards("relay-1", 15*time.Second, sq.Eq{"shard": []int{3, 9}})))
		add(fromSq("acquire_get", "Acquire (transaction): their new fences", d.leasesOf(sq.Eq{"shard": []int{3, 9}})))
		add(fromSq("renew", "Renew (transaction): extend the leases still held with their fence", d.renewSQL("relay-1", leases, 15*time.Second)))
		add(fromSq("renew_get", "Renew (transaction): which ones were extended", d.leasesOf(heldBy("relay-1", leases))))
	}
	add(fromSq("release", "Release (transaction on MySQL): hand shards back", d.releaseSQL("relay-1", leases)))
	add(fromSq("deregister", "Deregister: the relay stops", d.deregisterSQL("relay-1")))

	shards := []int64{3, 9}
	add(golden{name: "read_waiting", about: "ReadBatch, first and last: the keys of the shards that wait for a retry", sql: d.waitingSQL(shards, true)})
	add(golden{name: "read_waiting_all", about: "ReadBatch, the second look after the batch: every waiting key", sql: d.waitingSQL(shards, false)})
	req := ReadRequest{Shards: []int{3, 9}, Limit: 1000, Exclude: []int64{101, 102, 103, 107}}
	add(golden{name: "read_batch", about: "ReadBatch: the next rows in id order, leaving out a batch in flight (101-103, 107) and a waiting key",
		sql: d.readSQL(shards, req, []waitingKey{{shard: 3, keyHash: 1234567, minID: 55}})})
	many := make([]waitingKey, maxInlineWaiting+1)
	add(golden{name: "read_batch_many_waiting", about: "ReadBatch with more than 64 waiting keys: a correlated sub-query holds them back",
		sql: d.readSQL(shards, ReadRequest{Shards: req.Shards, Limit: 1000}, many)})

	add(golden{name: "ack", about: "Ack: delete published rows", sql: d.ackSQL([]int64{101, 102, 103})})
	add(fromSq("retry", "Retry: count an attempt and schedule the next", d.retrySQL([]Retry{
		{RowID: 101, Delay: time.Second, Err: "broker said no"}, {RowID: 102, Delay: 2 * time.Second, Err: "it's late"}})))
	fails := []Failure{{RowID: 101, Err: "too large"}, {RowID: 102, Err: "invalid"}}
	ids := []int64{101, 102}
	if d.f.lockRows {
		add(golden{name: "dead_letter_lock", about: "DeadLetter (transaction): lock the rows that still exist", sql: d.lockRowsSQL(ids)})
	}
	add(fromSq("dead_letter_copy", "DeadLetter (transaction): copy them with their error", d.deadLetterSQL(ids, fails)))
	add(golden{name: "dead_letter_delete", about: "DeadLetter (transaction): delete them", sql: d.deleteRowsSQL(ids)})
	add(fromSq("stats", "Stats", d.statsSQL()))
	add(golden{name: "backlog", about: "ReadBacklog (prommetrics gauges): pending and dead letters counted up to 100000, the oldest due message among the first 10000 due rows by id (delayed and retrying rows skipped)", sql: d.backlogSQL(DefaultBacklogLimit)})
	add(fromSq("overview_clock", "Overview: the database clock", d.clockSQL()))
	add(fromSq("overview_first", "Overview: the first message in line", d.firstInLineSQL()))
	add(fromSq("overview_count", "Overview: count the outbox, reading at most 100,001 rows", d.boundedCountSQL(100_001)))
	add(fromSq("overview_cells", "Overview of a small outbox: pending per topic and shard", d.cellsSQL(nil)))
	add(fromSq("overview_span", "Overview of a large outbox: the span of ids to sample", d.idSpanSQL()))
	add(fromSq("overview_sample", "Overview of a large outbox: pending per topic and shard in 3 ranges of ids (100 in real life)",
		d.cellsSQL([]int64{1, 3_000_001, 6_000_001})))
	add(fromSq("overview_waiting_count", "Overview: messages waiting for a retry", d.waitingCountSQL(10_001)))
	add(fromSq("overview_waiting", "Overview: 10 of them, next attempt first, of 1,000 of them", d.waitingSampleSQL(10, 1_000)))
	add(fromSq("overview_errors", "Overview: the most frequent errors of 1,000 of them", d.waitingErrorsSQL(5, 1_000)))
	add(fromSq("overview_dead_count", "Overview: dead letters, reading at most 10,001", d.deadCountSQL(10_001)))
	add(fromSq("overview_dead", "Overview: the newest 10,000 dead letters per topic", d.deadPerTopicSQL(10_000)))
	add(fromSq("overview_shards", "Overview: each shard's lease and first message in line", d.shardsSQL()))
	add(fromSq("overview_relays", "Overview: the relays' heartbeats", d.relaysSQL()))
	since := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	add(fromSq("dlq_list", "ListDeadLetters: every filter, newest first", d.listDeadLettersSQL(DeadLetterFilter{
		Topic: "orders", Since: since, Before: since.Add(24 * time.Hour), ErrorContains: "too large", BelowID: 500, Limit: 50},
		deadLetterListColumns)))
	add(fromSq("dlq_page", "Replay, Purge: the next chunk of a selection, oldest first", d.listDeadLettersSQL(DeadLetterFilter{
		Topic: "orders", AfterID: 1000, UpToID: 5000, OldestFirst: true, Limit: 500}, "id")))
	add(fromSq("dlq_span", "Replay, Purge: how many a filter selects, and their lowest and highest ids (the newest 50)",
		d.deadLetterSpanSQL(DeadLetterFilter{Topic: "orders", Limit: 50})))
	add(fromSq("dlq_ids", "DeadLetterIDs: the ids of some dead letters that still exist", d.listDeadLettersSQL(DeadLetterFilter{IDs: ids}, "id")))
	if d.f.lockRows {
		add(fromSq("dlq_replay_lock", "ReplayDeadLetters (transaction): lock the dead letters that still exist", d.lockDeadLettersSQL(ids)))
	}
	add(fromSq("dlq_replay_pending", "ReplayDeadLetters (transaction): is a message id pending again?", d.pendingAgainSQL(ids)))
	add(fromSq("dlq_replay_duplicates", "ReplayDeadLetters (transaction): which have a newer dead letter of their message id?", d.olderDuplicatesSQL(ids)))
	add(fromSq("dlq_replay_copy", "ReplayDeadLetters (transaction): copy them into the outbox", d.replaySQL(ids)))
	add(fromSq("dlq_delete", "ReplayDeadLetters (transaction), DeleteDeadLetters: delete them", d.deleteDeadLettersSQL(ids)))
	add(fromSq("dlq_prune_find", "PruneDeadLetters: up to 1000 of the oldest dead for longer than 30 days", d.pruneCandidatesSQL(30*24*time.Hour, 1000)))
	add(fromSq("dlq_prune_delete", "PruneDeadLetters: delete them, checking their age again", d.pruneDeadLettersSQL(ids, 30*24*time.Hour)))
	add(golden{name: "max_pending_shard", about: "MaxPendingShard: the relay's check of the application's shard count", sql: maxPendingShardSQL})
	return out
}

// render is the file: what the statement is for, the statement with line
// breaks before its main clauses (the only change to it), and its bound
// values.
func (g golden) render() string {
	var b strings.Builder
	b.WriteString("-- " + g.about + "\n")
	b.WriteString(breakClauses(g.sql) + ";\n")
	if len(g.args) > 0 {
		b.WriteString("-- args:")
		for _, a := range g.args {
			switch v := a.(type) {
			case []byte:
				fmt.Fprintf(&b, " x'%x'", v)
			case string:
				fmt.Fprintf(&b, " %q", v)
			default:
				fmt.Fprintf(&b, " %v", v)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func startsClause(q string, clauses []string) bool {
	for _, k := range clauses {
		if strings.HasPrefix(q, k) {
			return true
		}
	}
	return false
}

// breakClauses puts a line break before each main clause that is not
// inside parentheses, quotes or a comment.
func breakClauses(q string) string {
	clauses := []string{" FROM ", " WHERE ", " SET ", " VALUES ", " ORDER BY ", " GROUP BY ", " LIMIT ",
		" RETURNING ", " ON CONFLICT ", " ON DUPLICATE ", " FOR UPDATE", " SELECT "}
	var b strings.Builder
	depth, quoted := 0, false
	for i := 0; i < len(q); i++ {
		c := q[i]
		if !quoted && strings.HasPrefix(q[i:], "/*") {
			end := strings.Index(q[i:], "*/") + i + 2
			b.WriteString(q[i:end])
			i = end - 1
			continue
		}
		switch {
		case c == '\'':
			quoted = !quoted
		case quoted:
		case c == '(':
			depth++
		case c == ')':
			depth--
		case depth == 0 && c == ' ' && startsClause(q[i:], clauses):
			b.WriteByte('\n')
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
