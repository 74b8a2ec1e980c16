package main

// End-to-end tests of relay stats, relay dlq and relay prune: the built
// binary against each real database, checking its output and the tables.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/admin"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/localkafka"
	"github.com/outboxrelay/outbox/outboxtest/dbtest"
)

// adminDB is a migrated database of one dialect and the binary's
// environment for it.
type adminDB struct {
	*dbtest.DB
	name     dialect.Name
	env      []string
	password string
}

func openAdminDB(t *testing.T, name dialect.Name) *adminDB {
	t.Helper()
	db := dbtest.Open(t, name)
	u, pw := databaseURL(t, name, db)
	return &adminDB{DB: db, name: name, env: []string{"OUTBOX_DATABASE_URL=" + u}, password: pw}
}

// run runs the binary with args to completion and returns its exit status
// and output, failing the test if the output shows the password or a
// payload marker it was not asked for.
func (a *adminDB) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	p := runRelay(t, string(a.name)+"-"+args[0], a.env, 2*time.Minute, args...)
	out, errOut := p.stdout.String(), p.stderr.String()
	if a.password != "" && strings.Contains(out+errOut, a.password) {
		t.Errorf("relay %s shows the database password", strings.Join(args, " "))
	}
	if args[0] != "dlq" || args[1] != "show" {
		if strings.Contains(out+errOut, e2ePayloadMarker) {
			t.Errorf("relay %s shows a payload", strings.Join(args, " "))
		}
	}
	return p.ExitCode(), out, errOut
}

// mustRun is run that fails the test on a non-zero exit status.
func (a *adminDB) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := a.run(t, args...)
	if code != 0 {
		t.Fatalf("relay %s: exit status %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// enqueue commits messages of topic with ids prefix0..prefixN-1.
func (a *adminDB) enqueue(t *testing.T, topic, prefix string, n int) {
	t.Helper()
	ob, err := outbox.New(outbox.Config{Dialect: a.Dialect})
	if err != nil {
		t.Fatal(err)
	}
	for start := 0; start < n; start += 1000 {
		var msgs []outbox.Message
		for i := start; i < min(n, start+1000); i++ {
			msgs = append(msgs, outbox.Message{ID: fmt.Sprint(prefix, i), Topic: topic, Key: []byte(fmt.Sprint("key-", i%5)),
				Value: fmt.Appendf(nil, `{"marker":%q,"n":%d}`, e2ePayloadMarker, i)})
		}
		if err := ob.Enqueue(context.Background(), a.DB.DB, msgs...); err != nil {
			t.Fatal(err)
		}
	}
}

// deadLetter enqueues messages as enqueue does and dead-letters them with
// the error "rejected: <reason>", returning their dead-letter ids, oldest
// first.
func (a *adminDB) deadLetter(t *testing.T, topic, prefix string, n int, reason string) []int64 {
	t.Helper()
	ctx := context.Background()
	a.enqueue(t, topic, prefix, n)
	shards := allShards()
	var fails []dialect.Failure
	for {
		rows, err := a.Dialect.ReadBatch(ctx, a.DB.DB, dialect.ReadRequest{Shards: shards, Limit: 5000})
		if err != nil {
			t.Fatal(err)
		}
		fails = fails[:0]
		for _, r := range rows {
			if strings.HasPrefix(r.MessageID, prefix) && r.Topic == topic {
				fails = append(fails, dialect.Failure{RowID: r.RowID, Err: "rejected: " + reason})
			}
		}
		if len(fails) == 0 {
			break
		}
		if err := a.Dialect.DeadLetter(ctx, a.DB.DB, fails); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := a.Dialect.(dialect.Operator).DeadLetterIDs(ctx, a.DB.DB, dialect.DeadLetterFilter{Topic: topic, ErrorContains: reason})
	if err != nil || len(ids) != n {
		t.Fatalf("dead-lettered %d of %d: %v", len(ids), n, err)
	}
	slices.Reverse(ids)
	return ids
}

// allShards returns the relay's default shards.
func allShards() []int {
	shards := make([]int, outbox.DefaultNumShards)
	for i := range shards {
		shards[i] = i
	}
	return shards
}

// count returns the rows of table matching where ("" for all).
func (a *adminDB) count(t *testing.T, table, where string) int {
	t.Helper()
	q := "SELECT COUNT(*) FROM " + table
	if where != "" {
		q += " WHERE " + where
	}
	var n int
	if err := a.DB.DB.QueryRow(q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// messageIDs returns the message ids of table, sorted.
func (a *adminDB) messageIDs(t *testing.T, table string) []string {
	t.Helper()
	rows, err := a.DB.DB.Query("SELECT message_id FROM " + table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func TestE2EStats(t *testing.T) {
	relayBinary(t)
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		t.Parallel()
		a := openAdminDB(t, name)
		ctx := context.Background()
		a.deadLetter(t, "payments", "p", 2, "too large")
		a.enqueue(t, "orders", "o", 3)
		if err := a.Dialect.EnsureShards(ctx, a.DB.DB, outbox.DefaultNumShards); err != nil {
			t.Fatal(err)
		}
		rows, err := a.Dialect.ReadBatch(ctx, a.DB.DB, dialect.ReadRequest{Shards: allShards(), Limit: 1})
		if err != nil || len(rows) != 1 {
			t.Fatalf("ReadBatch: %v, %v", rows, err)
		}
		if err := a.Dialect.Retry(ctx, a.DB.DB, []dialect.Retry{{RowID: rows[0].RowID, Delay: time.Hour, Err: "broker timeout"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Dialect.Heartbeat(ctx, a.DB.DB, "relay-x", time.Minute); err != nil {
			t.Fatal(err)
		}

		var s admin.Stats
		js := a.mustRun(t, "stats", "--json")
		if err := json.Unmarshal([]byte(js), &s); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(js, `"errors": [`) || !strings.Contains(js, `"error": "broker timeout"`) || !strings.Contains(js, `"oldest_age_ns": `) {
			t.Errorf("stats --json does not use the documented field names:\n%s", js)
		}
		if s.Pending != 3 || s.Retrying != 1 || s.DeadLetters != 2 || s.RelaysAlive != 1 || s.Estimated || len(s.Shards) != 64 ||
			len(s.Topics) != 2 || s.Topics[0].Topic != "orders" || s.Topics[0].Pending != 3 || s.Topics[1].DeadLetters != 2 ||
			len(s.Waiting) != 1 || s.Waiting[0].LastError != "broker timeout" || s.Waiting[0].NextAttemptIn < 50*time.Minute ||
			len(s.Errors) != 1 || s.Errors[0] != (admin.ErrorCount{Err: "broker timeout", Count: 1}) {
			t.Errorf("stats --json: %+v", s)
		}
		text := a.mustRun(t, "stats")
		for _, want := range []string{"pending 3  oldest ", "retrying 1  dead letters 2  relays alive 1", "\norders ", "\npayments ",
			"broker timeout", "\nrelay-x "} {
			if !strings.Contains(text, want) {
				t.Errorf("relay stats does not show %q:\n%s", want, text)
			}
		}
	})
}

// TestE2EStatsStepFails: with the dead-letter table gone, relay stats
// prints everything else, names the part it could not read, shows its
// figures as "?" (null in JSON), not 0, and exits 1.
func TestE2EStatsStepFails(t *testing.T) {
	relayBinary(t)
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		t.Parallel()
		a := openAdminDB(t, name)
		a.enqueue(t, "orders", "o", 3)
		if _, err := a.DB.DB.Exec("DROP TABLE " + dialect.TableDeadLetters); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := a.run(t, "stats")
		if code != 1 || !strings.Contains(out, "pending 3  oldest ") || !strings.Contains(out, "\norders ") ||
			!strings.Contains(out, "retrying 0  dead letters ?  relays alive 0\n") ||
			!strings.Contains(out, "could not read dead letters: ") || !strings.Contains(errOut, "stats incomplete: could not read dead letters") {
			t.Errorf("relay stats without the dead-letter table: exit %d, want 1 with the rest printed\n%s%s", code, out, errOut)
		}
		code, out, _ = a.run(t, "stats", "--json")
		var s admin.Stats
		if err := json.Unmarshal([]byte(out), &s); err != nil || code != 1 || s.Pending != 3 || len(s.Failed) != 1 || s.Failed[0].Step != "dead letters" ||
			!strings.Contains(out, `"topics_complete": false`) || !strings.Contains(out, `"dead_letters": null,`) ||
			!strings.Contains(out, `"last_dead_age_ns": null`) || !strings.Contains(out, `"retrying": 0,`) {
			t.Errorf("relay stats --json without the dead-letter table: exit %d, %v\n%s", code, err, out)
		}
	})
}

func TestE2EDLQReplayPublishesOnce(t *testing.T) {
	relayBinary(t)
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		t.Parallel()
		a := openAdminDB(t, name)
		ids := a.deadLetter(t, e2eTopic, "m", 3, "too large")
		a.deadLetter(t, e2eTopic, "other", 1, "invalid")

		var items []struct {
			ID        int64  `json:"id"`
			MessageID string `json:"message_id"`
			LastError string `json:"last_error"`
		}
		if err := json.Unmarshal([]byte(a.mustRun(t, "dlq", "list", "--json", "--error-contains", "too large")), &items); err != nil {
			t.Fatal(err)
		}
		if len(items) != 3 || items[0].ID != ids[2] || items[0].MessageID != "m2" || items[0].LastError != "rejected: too large" {
			t.Fatalf("dlq list --json: %+v", items)
		}
		show := a.mustRun(t, "dlq", "show", strconv.FormatInt(ids[0], 10))
		if !strings.Contains(show, "message id:  m0\n") || !strings.Contains(show, `payload:     {"marker":"`+e2ePayloadMarker+`","n":0}`) ||
			!strings.Contains(show, "key:         key-0\n") {
			t.Errorf("dlq show:\n%s", show)
		}

		// Bad input changes nothing.
		idArgs := []string{strconv.FormatInt(ids[0], 10), strconv.FormatInt(ids[1], 10), strconv.FormatInt(ids[2], 10)}
		for _, args := range [][]string{
			append([]string{"dlq", "replay"}, idArgs...),                 // no --yes
			{"dlq", "replay", "--yes", "999998", "999999"},               // unknown ids, none existing
			{"dlq", "replay", "--yes", "--limit", "2"},                   // a limit is not a filter
			{"dlq", "purge", "--yes", "--since", "1h", "--before", "2h"}, // empty time range
			{"dlq", "replay", "--yes", "--since", "yesterday"},           // bad time
			{"dlq", "replay", "--yes"},                                   // nothing selected
			{"dlq", "replay", "--yes", "--all", "--topic", e2eTopic},     // two selections
			{"dlq", "purge", "--yes", "--limit", "-1", "--topic", "x"},   // bad limit
		} {
			code, out, errOut := a.run(t, args...)
			if code != 2 {
				t.Errorf("relay %s: exit status %d, want 2\n%s%s", strings.Join(args, " "), code, out, errOut)
			}
			if slices.Contains(args, "999999") && !strings.Contains(errOut, "no dead letter with id 999998, 999999") {
				t.Errorf("relay %s does not name the unknown id:\n%s", strings.Join(args, " "), errOut)
			}
			if slices.Contains(args, "yesterday") && !strings.Contains(errOut, "examples: 2026-12-01") {
				t.Errorf("relay %s gives no example:\n%s", strings.Join(args, " "), errOut)
			}
		}
		// Exported variables neither select nor confirm a change.
		withEnv := *a
		withEnv.env = append(slices.Clone(a.env), "OUTBOX_YES=true", "OUTBOX_ALL=true", "OUTBOX_TOPIC="+e2eTopic)
		if code, out, errOut := withEnv.run(t, "dlq", "replay", idArgs[0]); code != 2 || !strings.Contains(errOut, "add --yes") {
			t.Errorf("relay dlq replay with OUTBOX_YES=true: exit %d, want 2 asking for --yes\n%s%s", code, out, errOut)
		}
		if code, out, errOut := withEnv.run(t, "dlq", "purge", "--yes"); code != 2 {
			t.Errorf("relay dlq purge --yes with OUTBOX_ALL=true: exit %d, want 2 (nothing selected)\n%s%s", code, out, errOut)
		}
		if n := a.count(t, dialect.TableDeadLetters, ""); n != 4 {
			t.Fatalf("bad input changed the dead letters: %d left, want 4", n)
		}
		if out := a.mustRun(t, append([]string{"dlq", "replay", "--dry-run"}, idArgs...)...); !strings.Contains(out, "would replay 3 dead letters") {
			t.Errorf("--dry-run says %q", out)
		}
		if out := a.mustRun(t, "dlq", "replay", "--topic", "nothing.here", "--yes"); !strings.Contains(out, "no dead letters match") {
			t.Errorf("an empty filter says %q", out)
		}
		if out := a.mustRun(t, append([]string{"dlq", "replay", "--yes"}, idArgs...)...); !strings.Contains(out, "replay: 3 of 3 dead letters") {
			t.Errorf("replay says %q", out)
		}
		if n := a.count(t, dialect.TableDeadLetters, ""); n != 1 {
			t.Fatalf("%d dead letters after the replay, want 1 (the other)", n)
		}

		// A relay publishes each replayed message once.
		broker, err := localkafka.Start(4, []string{e2eTopic})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(broker.Close)
		relay := startRelay(t, string(name)+"-relay", append(a.env, "OUTBOX_KAFKA_BROKERS="+strings.Join(broker.Addrs, ",")),
			"run", "--poll-interval", "50ms", "--lease-duration", "3s")
		if !waitFor(60*time.Second, func() bool { return a.count(t, dialect.TableMessages, "") == 0 }) {
			t.Fatalf("the relay did not publish the replayed messages in 60s\n%s", relay.stderr.String())
		}
		relay.signal(t, syscall.SIGTERM)
		relay.wait(t, 20*time.Second)
		consumer, err := localkafka.NewConsumer(broker.Addrs, e2eTopic)
		if err != nil {
			t.Fatal(err)
		}
		defer consumer.Close()
		seen := map[string]int{}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for ctx.Err() == nil { // all of the topic, and any duplicate
			for _, r := range consumer.Poll(ctx) {
				seen[string(localkafka.Header(r, outbox.HeaderID))]++
			}
		}
		if len(seen) != 3 || seen["m0"] != 1 || seen["m1"] != 1 || seen["m2"] != 1 {
			t.Errorf("published %v; want m0, m1 and m2 once each", seen)
		}
	})
}

func TestE2EDLQReplayKilled(t *testing.T) {
	relayBinary(t)
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		t.Parallel()
		a := openAdminDB(t, name)
		const n = 3000
		a.deadLetter(t, "orders", "m", n, "too large")
		moved := a.replayKilled(t, n, "dlq", "replay", "--all", "--yes", "--chunk-size", "1")
		out := a.mustRun(t, "dlq", "replay", "--all", "--yes")
		if !strings.Contains(out, fmt.Sprintf("replay: %d of %d dead letters", n-moved, n-moved)) {
			t.Errorf("second replay says %q", out)
		}
		a.checkReplayedOnce(t, n)
	})
}

// TestE2EDLQReplayKilledByIDs: a replay by ids killed half-way and run
// again with the same ids and --skip-missing lists those replayed as not
// found and replays the rest: nothing lost, nothing twice.
func TestE2EDLQReplayKilledByIDs(t *testing.T) {
	relayBinary(t)
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		t.Parallel()
		a := openAdminDB(t, name)
		const n = 2000
		var ids []string
		for _, id := range a.deadLetter(t, "orders", "m", n, "too large") {
			ids = append(ids, strconv.FormatInt(id, 10))
		}
		arg := strings.Join(ids, ",")
		moved := a.replayKilled(t, n, "dlq", "replay", arg, "--yes", "--chunk-size", "1")
		out := a.mustRun(t, "dlq", "replay", arg, "--yes", "--skip-missing")
		if !strings.Contains(out, fmt.Sprintf("not found (already replayed or purged, or never existed), skipped: %d ids: ", moved)) ||
			!strings.Contains(out, fmt.Sprintf("replay: %d of %d dead letters", n-moved, n-moved)) {
			t.Errorf("replay by ids run again says %q", out)
		}
		a.checkReplayedOnce(t, n)
	})
}

// replayKilled starts the binary with args (a replay of all n dead
// letters), kills it with SIGKILL half-way, checks that each dead letter is
// either still one or in the outbox, and returns how many were replayed.
func (a *adminDB) replayKilled(t *testing.T, n int, args ...string) int {
	t.Helper()
	p := startRelay(t, string(a.name)+"-replay", a.env, args...)
	if !waitFor(60*time.Second, func() bool { return p.Exited() || a.count(t, dialect.TableMessages, "") >= n/10 }) {
		t.Fatalf("replay did not start within 60s\n%s", p.stderr.String())
	}
	if !p.Kill(10 * time.Second) {
		t.Fatalf("the replay finished before it could be killed (exit %d): the test proves nothing", p.ExitCode())
	}
	// The server may still commit the chunk whose COMMIT it received before
	// the kill closed the connection: count once the counts stop moving.
	moved := a.count(t, dialect.TableMessages, "")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(300 * time.Millisecond)
		again := a.count(t, dialect.TableMessages, "")
		if again == moved {
			break
		}
		moved = again
	}
	t.Logf("%s: killed after %d of %d dead letters", a.name, moved, n)
	both := a.count(t, dialect.TableDeadLetters+" AS dl JOIN "+dialect.TableMessages+" AS m ON m.message_id = dl.message_id", "")
	if moved == 0 || moved == n || moved+a.count(t, dialect.TableDeadLetters, "") != n || both != 0 {
		t.Fatalf("after SIGKILL: %d in the outbox, %d dead letters, %d in both; want all %d exactly once", moved,
			a.count(t, dialect.TableDeadLetters, ""), both, n)
	}
	return moved
}

// checkReplayedOnce checks that the outbox holds m0..m<n-1> once each and
// no dead letter is left.
func (a *adminDB) checkReplayedOnce(t *testing.T, n int) {
	t.Helper()
	var want []string
	for i := range n {
		want = append(want, fmt.Sprint("m", i))
	}
	slices.Sort(want)
	if got := a.messageIDs(t, dialect.TableMessages); !slices.Equal(got, want) || a.count(t, dialect.TableDeadLetters, "") != 0 {
		t.Fatalf("after the second replay the outbox holds %d messages (want the %d dead letters once each), %d dead letters left",
			len(got), n, a.count(t, dialect.TableDeadLetters, ""))
	}
}

// ageDeadLetters makes the dead letters of ids look dead for 40 days.
func (a *adminDB) ageDeadLetters(t *testing.T, ids []int64) {
	t.Helper()
	set := map[dialect.Name]string{
		dialect.NamePostgres: "dead_at = dead_at - INTERVAL '40 days'",
		dialect.NameMySQL:    "dead_at = dead_at - INTERVAL 40 DAY",
		dialect.NameSQLite:   "dead_at = dead_at - 40 * 86400000000",
	}[a.name]
	var list []string
	for _, id := range ids {
		list = append(list, strconv.FormatInt(id, 10))
	}
	if _, err := a.DB.DB.Exec("UPDATE " + dialect.TableDeadLetters + " SET " + set + " WHERE id IN (" + strings.Join(list, ",") + ")"); err != nil {
		t.Fatal(err)
	}
}

func TestE2EPurgeAndPrune(t *testing.T) {
	relayBinary(t)
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		t.Parallel()
		a := openAdminDB(t, name)
		old := a.deadLetter(t, "orders", "old", 25, "too large")
		a.ageDeadLetters(t, old)
		a.deadLetter(t, "orders", "young", 3, "too big")
		a.deadLetter(t, "orders", "slow", 4, "timeout")

		for _, args := range [][]string{
			{"prune", "--older-than", "30d"},                   // what to prune?
			{"prune", "--dead-letters"},                        // how old?
			{"prune", "--dead-letters", "--older-than", "30x"}, // bad age
			{"prune", "--dead-letters", "--older-than", "-3d"}, // negative
		} {
			code, out, errOut := a.run(t, args...)
			if code != 2 || !strings.Contains(errOut, "example") {
				t.Errorf("relay %s: exit %d, want 2 with an example\n%s%s", strings.Join(args, " "), code, out, errOut)
			}
		}
		if out := a.mustRun(t, "prune", "--dead-letters", "--older-than", "30d", "--chunk-size", "10"); out != "prune: deleted 25 dead letters older than 30d\n" {
			t.Errorf("prune says %q", out)
		}
		if out := a.mustRun(t, "dlq", "purge", "--error-contains", "timeout", "--yes"); !strings.Contains(out, "purge: 4 of 4 dead letters") {
			t.Errorf("purge says %q", out)
		}
		got := a.messageIDs(t, dialect.TableDeadLetters)
		if !slices.Equal(got, []string{"young0", "young1", "young2"}) {
			t.Fatalf("after prune and purge the dead letters are %v; want young0..2", got)
		}

		// relay run --prune-interval below 1m is a usage error, before the
		// database is opened.
		for _, iv := range []string{"100ms", "-1h"} {
			p := runRelay(t, string(name)+"-prune-interval", []string{"OUTBOX_DATABASE_URL=postgres://u:p@127.0.0.1:1/x", "OUTBOX_KAFKA_BROKERS=127.0.0.1:1"},
				30*time.Second, "run", "--prune-interval", iv)
			if p.ExitCode() != 2 || !strings.Contains(p.stderr.String(), "at least 1m0s") {
				t.Errorf("relay run --prune-interval %s: exit %d, want 2 saying at least 1m\n%s", iv, p.ExitCode(), p.stderr.String())
			}
		}
		// relay run --prune-interval prunes in the background.
		more := a.deadLetter(t, "orders", "older", 3, "huge")
		a.ageDeadLetters(t, more)
		broker, err := localkafka.Start(1, []string{e2eTopic})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(broker.Close)
		relay := startRelay(t, string(name)+"-relay", append(a.env, "OUTBOX_KAFKA_BROKERS="+strings.Join(broker.Addrs, ",")),
			"run", "--prune-interval", "1m", "--prune-older-than", "30d") // the first prune within 10s
		pruned := waitFor(30*time.Second, func() bool { return a.count(t, dialect.TableDeadLetters, "") == 3 })
		relay.signal(t, syscall.SIGTERM)
		if code := relay.wait(t, 20*time.Second); code != 0 || !pruned {
			t.Fatalf("relay run --prune-interval: pruned %v, exit %d\n%s", pruned, code, relay.stderr.String())
		}
		if got := a.messageIDs(t, dialect.TableDeadLetters); !slices.Equal(got, []string{"young0", "young1", "young2"}) {
			t.Errorf("after relay run --prune-interval the dead letters are %v; want young0..2", got)
		}
	})
}

// TestE2EAdminSecretNotShown runs the admin commands against a database
// that cannot be reached, with a password in its URL: they fail with
// status 1 and never show the password.
func TestE2EAdminSecretNotShown(t *testing.T) {
	t.Parallel()
	relayBinary(t)
	const password = "SuperSecret123"
	env := []string{"OUTBOX_DATABASE_URL=postgres://user:" + password + "@127.0.0.1:1/x?sslmode=disable"}
	for _, args := range [][]string{
		{"stats"}, {"stats", "--json"}, {"dlq", "list"}, {"dlq", "show", "1"}, {"dlq", "replay", "--all", "--yes"},
		{"dlq", "purge", "1", "--yes"}, {"prune", "--dead-letters", "--older-than", "30d"},
	} {
		p := runRelay(t, strings.Join(args, "-"), env, 30*time.Second, args...)
		out := p.stdout.String() + p.stderr.String()
		if p.ExitCode() != 1 || strings.Contains(out, password) || !strings.Contains(out, "postgres://127.0.0.1:1/x") {
			t.Errorf("relay %s: exit %d, want 1 naming the database without its password:\n%s", strings.Join(args, " "), p.ExitCode(), out)
		}
	}
}

// TestE2EDLQConcurrentReplays runs two replays of every dead letter at
// once: each dead letter is replayed once, and both exit 0, the second
// reporting what the first took as gone.
func TestE2EDLQConcurrentReplays(t *testing.T) {
	relayBinary(t)
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		t.Parallel()
		a := openAdminDB(t, name)
		const n = 2000
		a.deadLetter(t, "orders", "m", n, "too large")
		want := a.messageIDs(t, dialect.TableDeadLetters)
		p1 := startRelay(t, string(name)+"-replay-1", a.env, "dlq", "replay", "--all", "--yes", "--chunk-size", "10")
		p2 := startRelay(t, string(name)+"-replay-2", a.env, "dlq", "replay", "--all", "--yes", "--chunk-size", "10")
		done := 0
		for _, p := range []*proc{p1, p2} {
			if code := p.wait(t, 2*time.Minute); code != 0 {
				t.Fatalf("%s: exit %d\n%s%s", p.name, code, p.stdout.String(), p.stderr.String())
			}
			var d, of int
			if _, err := fmt.Sscanf(p.stdout.String(), "replay: %d of %d dead letters", &d, &of); err != nil {
				t.Fatalf("%s says %q", p.name, p.stdout.String())
			}
			t.Logf("%s: %s", p.name, strings.TrimSpace(p.stdout.String()))
			done += d
		}
		if got := a.messageIDs(t, dialect.TableMessages); done != n || !slices.Equal(got, want) || a.count(t, dialect.TableDeadLetters, "") != 0 {
			t.Fatalf("the two replays replayed %d, the outbox holds %d; want %d once each and no dead letter left", done, len(got), n)
		}
	})
}

// TestE2EDLQReplayRefusesByName: a dead letter whose message id is pending
// again, and an older dead letter of a message id dead-lettered twice, are
// refused by name (dead-letter id and message id) in the first chunk of a
// filter replay; everything else is replayed, each message id once, and
// the command exits 1. Run again by ids (as after a replay killed
// half-way), the ids replayed already are listed as gone and the rest is
// replayed.
func TestE2EDLQReplayRefusesByName(t *testing.T) {
	relayBinary(t)
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		t.Parallel()
		a := openAdminDB(t, name)
		ids := a.deadLetter(t, "orders", "m", 6, "too large")
		dup := a.deadLetter(t, "orders", "m", 1, "again")[0] // m0 dead-lettered a second time
		a.enqueue(t, "orders", "m", 2)                       // m0, m1 pending again...
		if _, err := a.DB.DB.Exec("DELETE FROM " + dialect.TableMessages + " WHERE message_id = 'm0'"); err != nil {
			t.Fatal(err) // ...m1 only
		}

		code, out, errOut := a.run(t, "dlq", "replay", "--topic", "orders", "--yes", "--chunk-size", "2")
		for _, want := range []string{
			"replay: 5 of 7 dead letters\n",
			fmt.Sprintf("not replayed: dead letter %d (message id m0): dead letter %d is a newer one of the same message id", ids[0], dup),
			fmt.Sprintf("not replayed: dead letter %d (message id m1): its message id is pending in the outbox again", ids[1]),
		} {
			if !strings.Contains(out, want) {
				t.Errorf("replay output lacks %q:\n%s", want, out)
			}
		}
		if code != 1 || !strings.Contains(errOut, "2 dead letters not replayed") {
			t.Errorf("replay with refusals: exit %d, want 1 saying so\n%s", code, errOut)
		}
		if got := a.messageIDs(t, dialect.TableMessages); !slices.Equal(got, []string{"m0", "m1", "m2", "m3", "m4", "m5"}) {
			t.Errorf("outbox holds %v, want m0..m5 once each", got)
		}
		if got := a.messageIDs(t, dialect.TableDeadLetters); !slices.Equal(got, []string{"m0", "m1"}) {
			t.Errorf("dead letters left %v, want the older m0 and m1", got)
		}

		// Run again by ids with --skip-missing: those gone are listed, the
		// rest replayed.
		more := a.deadLetter(t, "invoices", "i", 4, "timeout")
		var idArgs []string
		for _, id := range more {
			idArgs = append(idArgs, strconv.FormatInt(id, 10))
		}
		a.mustRun(t, "dlq", "replay", "--yes", idArgs[0], idArgs[1])
		out = a.mustRun(t, append([]string{"dlq", "replay", "--yes", "--skip-missing"}, idArgs...)...)
		if !strings.Contains(out, "not found (already replayed or purged, or never existed), skipped: 2 ids: "+idArgs[0]+", "+idArgs[1]+"\n") ||
			!strings.Contains(out, "replay: 2 of 2 dead letters") {
			t.Errorf("replay run again by ids says %q", out)
		}
		if code, _, errOut := a.run(t, append([]string{"dlq", "replay", "--yes"}, idArgs...)...); code != 2 ||
			!strings.Contains(errOut, "no dead letter with id "+strings.Join(idArgs, ", ")) {
			t.Errorf("replay of ids all gone: exit %d, want 2 naming them\n%s", code, errOut)
		}
	})
}

// TestE2EDLQUnknownIDs: ids of which some do not exist (a typo) are
// refused with exit 2, naming them, and nothing changes, for replay and
// purge, with --yes and without; --skip-missing lists them and changes the
// others; it applies to ids only.
func TestE2EDLQUnknownIDs(t *testing.T) {
	relayBinary(t)
	dbtest.Run(t, func(t *testing.T, name dialect.Name) {
		t.Parallel()
		a := openAdminDB(t, name)
		ids := a.deadLetter(t, "orders", "m", 3, "too large")
		real := strconv.FormatInt(ids[0], 10)
		typo := strconv.FormatInt(ids[2]+1000, 10)
		for _, args := range [][]string{
			{"dlq", "replay", real, typo, "--yes"},
			{"dlq", "purge", real + "," + typo, "--yes"},
			{"dlq", "purge", real, typo},
			{"dlq", "replay", real, typo, "--dry-run"},
		} {
			code, out, errOut := a.run(t, args...)
			if code != 2 || !strings.Contains(errOut, "no dead letter with id "+typo+" (nothing changed)") ||
				!strings.Contains(errOut, "--skip-missing") || strings.Contains(out, "replay:") || strings.Contains(out, "purge:") {
				t.Errorf("relay %s: exit %d, want 2 naming %s\n%s%s", strings.Join(args, " "), code, typo, out, errOut)
			}
			if n := a.count(t, dialect.TableDeadLetters, ""); n != 3 || a.count(t, dialect.TableMessages, "") != 0 {
				t.Fatalf("after relay %s: %d dead letters, want 3 and an empty outbox: nothing changed", strings.Join(args, " "), n)
			}
		}
		if code, _, errOut := a.run(t, "dlq", "purge", "--all", "--skip-missing", "--yes"); code != 2 || !strings.Contains(errOut, "applies to ids") {
			t.Errorf("purge --all --skip-missing: exit %d, want 2\n%s", code, errOut)
		}
		out := a.mustRun(t, "dlq", "purge", real, typo, "--skip-missing", "--yes")
		if !strings.Contains(out, "not found (already replayed or purged, or never existed), skipped: 1 ids: "+typo+"\n") ||
			!strings.Contains(out, "purge: 1 of 1 dead letters") {
			t.Errorf("purge --skip-missing says %q", out)
		}
		if got := a.messageIDs(t, dialect.TableDeadLetters); !slices.Equal(got, []string{"m1", "m2"}) {
			t.Errorf("after purge --skip-missing the dead letters are %v; want m1, m2", got)
		}
		out = a.mustRun(t, "dlq", "replay", real, typo, "--skip-missing", "--yes")
		if !strings.Contains(out, "skipped: 2 ids: "+real+", "+typo+"\n") || !strings.Contains(out, "no dead letters match: nothing to do") {
			t.Errorf("replay --skip-missing of ids all gone says %q", out)
		}
	})
}
