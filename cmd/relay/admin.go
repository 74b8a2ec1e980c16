package main

// What the admin commands (stats, dlq, prune) share: their flags, opening
// the database and an admin.Admin, the errors, and printing.

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/admin"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/cli"
)

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

// withAdmin opens the database and an Admin of it, runs fn with a context
// that SIGTERM and SIGINT cancel and the database's display name (its URL
// without the password), and closes the database.
func (f adminFlags) withAdmin(getenv func(string) string, fn func(ctx context.Context, a *admin.Admin, where string) error) error {
	db, d, a, err := f.open(getenv)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, stop := adminContext()
	defer stop()
	return fn(ctx, a, d.display)
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

// oneLine keeps a text on one line of at most 120 characters, without
// control characters (clean).
func oneLine(s string) string {
	s = clean(strings.Join(strings.Fields(s), " "))
	if r := []rune(s); len(r) > 120 {
		s = string(r[:119]) + "…"
	}
	return s
}

// clean replaces the control characters of s (a terminal escape in a
// message id or an error text) and invalid UTF-8 with U+FFFD.
func clean(s string) string { return cleanKeeping(s, "") }

// cleanKeeping is clean that keeps the characters of keep.
func cleanKeeping(s, keep string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && !strings.ContainsRune(keep, r) {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
}

// adminContext is the context of an admin command: cancelled by SIGTERM or
// SIGINT.
func adminContext() (context.Context, func()) {
	return signalContext(func(os.Signal) {})
}

// selectionError makes the admin API's input errors usage errors.
func selectionError(where string, err error) error {
	if errors.Is(err, admin.ErrUnknownIDs) || errors.Is(err, admin.ErrEmptySelection) || errors.Is(err, admin.ErrInvalidArgument) {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	return dbError(where, err)
}

// dbError names the database (never its URL) in err, with a hint when the
// outbox tables are missing.
func dbError(where string, err error) error {
	if dialect.IsMissingTable(err) {
		return fmt.Errorf("%s: %w (the outbox tables are missing: run relay migrate)", where, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}
