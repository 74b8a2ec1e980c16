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
			append([]string{"dlq", "replay"}, idArgs...),               // no --yes
			{"dlq", "replay", "--yes", idArgs[0], "999999"},            // unknown id
			{"dlq", "replay", "--yes", "--since", "yesterday"},         // bad time
			{"dlq", "replay", "--yes"},                                 // nothing selected
			{"dlq", "replay", "--yes", "--all", "--topic", e2eTopic},   // two selections
			{"dlq", "purge", "--yes", "--limit", "-1", "--topic", "x"}, // bad limit
		} {
			code, out, errOut := a.run(t, args...)
			if code != 2 {
				t.Errorf("relay %s: exit status %d, want 2\n%s%s", strings.Join(args, " "), code, out, errOut)
			}
			if slices.Contains(args, "999999") && !strings.Contains(errOut, "no dead letter with id 999999") {
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
		want := a.messageIDs(t, dialect.TableDeadLetters)

		p := startRelay(t, string(name)+"-replay", a.env, "dlq", "replay", "--all", "--yes", "--chunk-size", "1")
		if !waitFor(60*time.Second, func() bool { return p.Exited() || a.count(t, dialect.TableMessages, "") >= n/10 }) {
			t.Fatalf("replay did not start within 60s\n%s", p.stderr.String())
		}
		if !p.Kill(10 * time.Second) {
			t.Fatalf("the replay finished before it could be killed (exit %d): the test proves nothing", p.ExitCode())
		}
		moved := a.count(t, dialect.TableMessages, "")
		t.Logf("%s: killed after %d of %d dead letters", name, moved, n)
		both := a.count(t, dialect.TableDeadLetters+" AS dl JOIN "+dialect.TableMessages+" AS m ON m.message_id = dl.message_id", "")
		if moved == 0 || moved == n || moved+a.count(t, dialect.TableDeadLetters, "") != n || both != 0 {
			t.Fatalf("after SIGKILL: %d in the outbox, %d dead letters, %d in both; want all %d exactly once", moved,
				a.count(t, dialect.TableDeadLetters, ""), both, n)
		}
		out := a.mustRun(t, "dlq", "replay", "--all", "--yes")
		if !strings.Contains(out, fmt.Sprintf("replay: %d of %d dead letters", n-moved, n-moved)) {
			t.Errorf("second replay says %q", out)
		}
		if got := a.messageIDs(t, dialect.TableMessages); !slices.Equal(got, want) || a.count(t, dialect.TableDeadLetters, "") != 0 {
			t.Fatalf("after the second replay the outbox holds %d messages (want the %d dead letters once each), %d dead letters left",
				len(got), n, a.count(t, dialect.TableDeadLetters, ""))
		}
	})
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

		// relay run --prune-interval prunes in the background.
		more := a.deadLetter(t, "orders", "older", 3, "huge")
		a.ageDeadLetters(t, more)
		broker, err := localkafka.Start(1, []string{e2eTopic})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(broker.Close)
		relay := startRelay(t, string(name)+"-relay", append(a.env, "OUTBOX_KAFKA_BROKERS="+strings.Join(broker.Addrs, ",")),
			"run", "--prune-interval", "100ms", "--prune-older-than", "30d")
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
