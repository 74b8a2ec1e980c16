package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/admin"
	"github.com/outboxrelay/outbox/internal/cli"
)

const statsAbout = `Shows the state of the outbox: the totals an operator checks first (pending
messages, the oldest one's age, messages waiting for a retry, dead letters,
relays alive), then per topic, the messages waiting for a retry with their
last errors, the shards and the relays. It only reads, takes no lock a relay
waits for, and answers quickly on any size of outbox: above 100,000 pending
messages the per-topic and per-shard counts are estimated from a sample
(marked "~"). The database URL comes from OUTBOX_DATABASE_URL or
--database-url-file.`

const statsExamples = `  OUTBOX_DATABASE_URL=postgres://app@db:5432/app relay stats
  relay stats --json | jq '.pending, .oldest_age_ns / 1e9'
  relay stats --all-shards --lease-duration 30s`

// adminFlags are the flags of the commands that work on the tables
// through package admin.
type adminFlags struct {
	db    dbFlags
	lease *time.Duration
	chunk *int
}

func addAdminFlags(fs *flag.FlagSet) adminFlags {
	return adminFlags{
		db:    addDBFlags(fs),
		lease: fs.Duration("lease-duration", outbox.DefaultLeaseDuration, "the relays' --lease-duration: a relay is alive if it sent a heartbeat within it"),
		chunk: fs.Int("chunk-size", admin.DefaultChunkSize, "dead letters changed per transaction"),
	}
}

// adminEnv is getenv for the flags of the admin commands: only the
// database's and the relays' lease (OUTBOX_DATABASE_URL_FILE,
// OUTBOX_DB_MAX_CONNS, OUTBOX_LEASE_DURATION) come from the environment.
// What to change, and --yes, come from the command line only, so that an
// exported variable can neither widen a change nor confirm it.
func adminEnv(getenv func(string) string) func(string) string {
	return func(k string) string {
		switch k {
		case envName("database-url-file"), envName("db-max-conns"), envName("lease-duration"):
			return getenv(k)
		}
		return ""
	}
}

// newAdminFlagSet is newFlagSet for the admin commands, whose --help says
// which flags have an environment variable (adminEnv).
func newAdminFlagSet(name, about, examples string, out io.Writer) *flag.FlagSet {
	return cli.FlagSet(cli.Usage{Program: "relay", Command: name, About: about, Examples: examples,
		FlagsHeading: "Flags (only --database-url-file, --db-max-conns and --lease-duration are also read from\n" +
			"OUTBOX_DATABASE_URL_FILE, OUTBOX_DB_MAX_CONNS and OUTBOX_LEASE_DURATION):"}, out)
}

// open opens the database and an Admin of it; close the database after.
func (f adminFlags) open(getenv func(string) string) (*sql.DB, database, *admin.Admin, error) {
	db, d, err := f.db.open(getenv, database.adminSession)
	if err != nil {
		return nil, database{}, nil, err
	}
	a, err := admin.New(db, d.dialect, admin.Config{ChunkSize: *f.chunk, LiveWithin: *f.lease})
	if err != nil {
		db.Close()
		return nil, database{}, nil, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	return db, d, a, nil
}

// adminSession returns d with jit=off on PostgreSQL, unless the URL sets
// it: the admin statements are small, but a stale row estimate (a backlog
// just drained, not yet analyzed) can put a plan's cost above
// jit_above_cost, and compiling it would take longer than running it.
func (d database) adminSession() database {
	if d.driver != "postgres" {
		return d
	}
	base, query, _ := strings.Cut(d.dsn, "?")
	q, err := url.ParseQuery(query)
	if err != nil || q.Has("jit") {
		return d
	}
	q.Set("jit", "off")
	d.dsn = base + "?" + q.Encode()
	return d
}

func cmdStats(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := newAdminFlagSet("stats", statsAbout, statsExamples, stderr)
	af := addAdminFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON (durations in nanoseconds) instead of tables")
	allShards := fs.Bool("all-shards", false, "list every shard, not only those with pending messages or an expired lease")
	if err := parseFlags(fs, args, adminEnv(getenv)); err != nil {
		return err
	}
	db, d, a, err := af.open(getenv)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, stop := signalContext(func(os.Signal) {})
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := a.Stats(ctx)
	if err != nil {
		return dbError(d.display, err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	printStats(stdout, d.display, s, *allShards)
	return nil
}

// printStats writes s as tables.
func printStats(w io.Writer, where string, s admin.Stats, allShards bool) {
	est := ""
	if s.Estimated {
		est = "~"
	}
	fmt.Fprintf(w, "%s at %s\n", where, s.At.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "pending %s%d  oldest %s  retrying %d  dead letters %d  relays alive %d\n",
		est, s.Pending, age(s.OldestAge), s.Retrying, s.DeadLetters, s.RelaysAlive)
	if s.Estimated {
		fmt.Fprintln(w, "(~: estimated from a sample of the outbox)")
	}
	table(w, "\nTOPIC\tPENDING\tOLDEST\tDEAD LETTERS\tNEWEST DEAD", len(s.Topics), func(tw io.Writer, i int) {
		t := s.Topics[i]
		fmt.Fprintf(tw, "%s\t%s%d\t%s\t%d\t%s\n", t.Topic, est, t.Pending, age(t.OldestAge), t.DeadLetters, age(t.LastDeadAge))
	})
	table(w, fmt.Sprintf("\nWAITING FOR A RETRY (%d of %d, next attempt first)\nROW\tMESSAGE ID\tTOPIC\tSHARD\tATTEMPTS\tNEXT ATTEMPT IN\tLAST ERROR", len(s.Waiting), s.Retrying),
		len(s.Waiting), func(tw io.Writer, i int) {
			x := s.Waiting[i]
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%s\t%s\n", x.RowID, x.MessageID, x.Topic, x.Shard, x.Attempts, x.NextAttemptIn.Round(time.Second), oneLine(x.LastError))
		})
	table(w, "\nCOUNT\tLAST ERROR OF MESSAGES WAITING", len(s.Errors), func(tw io.Writer, i int) {
		fmt.Fprintf(tw, "%d\t%s\n", s.Errors[i].Count, oneLine(s.Errors[i].Err))
	})
	var shards []admin.ShardStats
	for _, sh := range s.Shards {
		if allShards || sh.Pending > 0 || sh.OldestAge > 0 || sh.Owner == "" || sh.LeaseLeft < 0 {
			shards = append(shards, sh)
		}
	}
	if len(s.Shards) == 0 {
		fmt.Fprintln(w, "\nSHARDS: none yet (the first relay to start creates them)")
	} else {
		fmt.Fprintf(w, "\nSHARDS: %d (%d listed: pending, free or expired; --all-shards for all)\n", len(s.Shards), len(shards))
	}
	table(w, "SHARD\tOWNER\tLEASE LEFT\tPENDING\tOLDEST", len(shards), func(tw io.Writer, i int) {
		sh := shards[i]
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s%d\t%s\n", sh.Shard, orDash(sh.Owner), sh.LeaseLeft.Round(time.Millisecond), est, sh.Pending, age(sh.OldestAge))
	})
	table(w, "\nRELAY\tHEARTBEAT AGE\tALIVE", len(s.Relays), func(tw io.Writer, i int) {
		r := s.Relays[i]
		fmt.Fprintf(tw, "%s\t%s\t%v\n", r.ID, r.HeartbeatAge.Round(time.Millisecond), r.Alive)
	})
}

// table writes a heading and n rows, aligned; nothing when n is 0.
func table(w io.Writer, heading string, n int, row func(io.Writer, int)) {
	if n == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, heading)
	for i := range n {
		row(tw, i)
	}
	tw.Flush()
}

// age prints a duration for humans, "-" for none.
func age(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < 48*time.Hour:
		return d.Round(time.Second).String()
	}
	return fmt.Sprintf("%.1fd", d.Hours()/24)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a text on one line of at most 120 characters.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 120 {
		s = string(r[:119]) + "…"
	}
	return s
}
