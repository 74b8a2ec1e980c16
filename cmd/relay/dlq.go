package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/outboxrelay/outbox/admin"
)

const dlqUsage = `Usage: relay dlq <list|show|replay|purge> [flags]

  list      list dead letters, newest first (no payloads)
  show ID   one dead letter whole: headers, key and payload
  replay    move dead letters back into the outbox (same outbox-id)
  purge     delete dead letters

replay and purge take ids, or a filter (--topic, --since, --before,
--error-contains, --limit), or --all; they print what they would do and
change nothing without --yes; --dry-run prints the count only.
Run "relay dlq <command> --help" for its flags.
`

func cmdDLQ(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, dlqUsage)
		return fmt.Errorf("%w: which dlq command? list, show, replay or purge", ErrUsage)
	}
	switch args[0] {
	case "list":
		return dlqList(args[1:], stdout, stderr, getenv)
	case "show":
		return dlqShow(args[1:], stdout, stderr, getenv)
	case "replay", "purge":
		return dlqChange(args[0], args[1:], stdout, stderr, getenv)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, dlqUsage)
		return nil
	}
	return fmt.Errorf("%w: unknown dlq command %q%s; see relay dlq --help", ErrUsage, args[0], didYouMean(args[0], []string{"list", "show", "replay", "purge"}))
}

// filterFlags are the flags that select dead letters.
type filterFlags struct {
	topic, since, before, errContains *string
	limit                             *int
}

func addFilterFlags(fs *flag.FlagSet) filterFlags {
	return filterFlags{
		topic:       fs.String("topic", "", "only dead letters of this topic"),
		since:       fs.String("since", "", "only those dead at or after this time or age (2026-12-01, 2026-12-01T08:00:00Z, 24h, 7d)"),
		before:      fs.String("before", "", "only those dead before this time or age"),
		errContains: fs.String("error-contains", "", "only those whose last error contains this text"),
		limit:       fs.Int("limit", 0, "at most this many, the newest (list: default 100)"),
	}
}

func (f filterFlags) filter(now time.Time) (admin.Filter, error) {
	since, err := parseWhen("since", *f.since, now)
	if err != nil {
		return admin.Filter{}, err
	}
	before, err := parseWhen("before", *f.before, now)
	if err != nil {
		return admin.Filter{}, err
	}
	if !since.IsZero() && !before.IsZero() && !since.Before(before) {
		return admin.Filter{}, fmt.Errorf("%w: --since %s is not before --before %s: the selection would be empty (example: --since 7d --before 24h)", ErrUsage, *f.since, *f.before)
	}
	if *f.limit < 0 {
		return admin.Filter{}, fmt.Errorf("%w: --limit cannot be negative (example: --limit 50)", ErrUsage)
	}
	return admin.Filter{Topic: *f.topic, Since: since, Before: before, ErrorContains: *f.errContains, Limit: *f.limit}, nil
}

// listItem is a dead letter as list shows it: no key, value or headers.
type listItem struct {
	ID         int64     `json:"id"`
	MessageID  string    `json:"message_id"`
	Topic      string    `json:"topic"`
	Shard      int       `json:"shard"`
	Attempts   int       `json:"attempts"`
	KeyBytes   int       `json:"key_bytes"`
	ValueBytes int       `json:"value_bytes"`
	LastError  string    `json:"last_error"`
	CreatedAt  time.Time `json:"created_at"`
	DeadAt     time.Time `json:"dead_at"`
}

func dlqList(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := newAdminFlagSet("dlq list", "Lists dead letters, newest first, without their keys and payloads (relay dlq show ID prints one whole).",
		"  relay dlq list --topic orders --since 24h\n  relay dlq list --error-contains 'too large' --json | jq '.[].id'", stdout)
	af := addAdminFlags(fs)
	ff := addFilterFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args, adminEnv(getenv)); err != nil {
		return err
	}
	f, err := ff.filter(time.Now())
	if err != nil {
		return err
	}
	if f.Limit == 0 {
		f.Limit = 100
	}
	return af.withAdmin(getenv, func(ctx context.Context, a *admin.Admin, where string) error {
		dls, err := a.ListDeadLetters(ctx, f)
		if err != nil {
			return dbError(where, err)
		}
		return printList(stdout, dls, f.Limit, *asJSON)
	})
}

// printList prints dead letters as dlq list does.
func printList(stdout io.Writer, dls []admin.DeadLetter, limit int, asJSON bool) error {
	items := make([]listItem, len(dls))
	for i, x := range dls {
		items[i] = listItem{ID: x.ID, MessageID: x.MessageID, Topic: x.Topic, Shard: x.Shard, Attempts: x.Attempts,
			KeyBytes: len(x.Key), ValueBytes: len(x.Value), LastError: x.LastError, CreatedAt: x.CreatedAt, DeadAt: x.DeadAt}
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(items)
	}
	if len(items) == 0 {
		fmt.Fprintln(stdout, "no dead letters match")
		return nil
	}
	table(stdout, "ID\tDEAD AT\tTOPIC\tMESSAGE ID\tATTEMPTS\tBYTES\tLAST ERROR", len(items), func(tw io.Writer, i int) {
		x := items[i]
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%s\n", x.ID, x.DeadAt.UTC().Format(time.RFC3339), x.Topic, clean(x.MessageID),
			x.Attempts, x.KeyBytes+x.ValueBytes, oneLine(x.LastError))
	})
	if len(items) == limit {
		fmt.Fprintf(stdout, "(the newest %d; --limit for more, --before to page)\n", limit)
	}
	return nil
}

const changeAbout = `%s dead letters: by ids (arguments, or comma-separated), by a filter, or
--all (--limit narrows a filter or --all to the newest; alone it selects
nothing). It prints what it would do and changes nothing without --yes;
--dry-run prints the count only. It works in chunks of --chunk-size, each
one transaction, walking the selection by id. An id given that does not
exist is an error naming it, and nothing changes; with --skip-missing the
ids not found are listed and the others are changed. After a crash, run
the same command again (by ids: with --skip-missing, as those done are
gone): nothing is lost or done twice.%s`

const replayNote = `

A replayed message goes back into the outbox with the same message id
(outbox-id header: consumers de-duplicate by it), its attempts reset, and is
published after the messages of its key that were published meanwhile:
replaying changes the order of its key. A dead letter whose message id is
pending in the outbox again, or one that has a newer dead letter of the same
message id (only the newest is replayed), is left in place and listed; the
others are replayed, and the command exits with status 1.`

func dlqChange(op string, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	verb, note := "Replays", replayNote
	if op == "purge" {
		verb, note = "Deletes", ""
	}
	fs := newAdminFlagSet("dlq "+op, fmt.Sprintf(changeAbout, verb, note),
		fmt.Sprintf("  relay dlq %s 41 42 43 --yes\n  relay dlq %s --topic orders --error-contains timeout --dry-run\n  relay dlq %s --all --yes", op, op, op), stdout)
	af := addAdminFlags(fs)
	ff := addFilterFlags(fs)
	all := fs.Bool("all", false, "every dead letter")
	yes := fs.Bool("yes", false, "do it (without it nothing changes)")
	dry := fs.Bool("dry-run", false, "print how many dead letters it would change, and stop")
	skip := fs.Bool("skip-missing", false, "with ids: list those not found (already replayed or purged, or never existing) and change the others, instead of refusing")
	rest, err := parseFlagsArgs(fs, args, adminEnv(getenv))
	if err != nil {
		return err
	}
	ids, err := parseIDs(rest)
	if err != nil {
		return err
	}
	f, err := ff.filter(time.Now())
	if err != nil {
		return err
	}
	if *skip && len(ids) == 0 {
		return fmt.Errorf("%w: --skip-missing applies to ids, not to a filter or --all (example: relay dlq %s 41 42 43 --skip-missing --yes)", ErrUsage, op)
	}
	sel := admin.Selection{IDs: ids, Filter: f, All: *all, SkipMissing: *skip}
	return af.withAdmin(getenv, func(ctx context.Context, a *admin.Admin, where string) error {
		if *dry || !*yes {
			return previewChange(ctx, stdout, a, sel, op, *dry, where)
		}
		return applyChange(ctx, stdout, a, sel, op, where)
	})
}

// previewChange prints what op would change, and changes nothing: a usage
// error unless dry (--dry-run), which asked for just that.
func previewChange(ctx context.Context, stdout io.Writer, a *admin.Admin, sel admin.Selection, op string, dry bool, where string) error {
	p, err := a.Plan(ctx, sel)
	if err != nil {
		return changeError(where, err)
	}
	printMissing(stdout, p.Missing)
	if p.Count == 0 {
		fmt.Fprintln(stdout, "no dead letters match: nothing to do")
		return nil
	}
	ids := fmt.Sprintf("ids %d … %d", p.Low, p.High)
	if p.Count == 1 {
		ids = fmt.Sprintf("id %d", p.Low)
	}
	fmt.Fprintf(stdout, "would %s %d dead letters (%s)\n", op, p.Count, ids)
	if dry {
		return nil
	}
	return fmt.Errorf("%w: nothing changed: add --yes to %s them", ErrUsage, op)
}

// applyChange replays or purges sel and prints what it did. Dead letters
// replayed or purged by someone else meanwhile are counted as gone; those
// a replay refused are listed, and make an error.
func applyChange(ctx context.Context, stdout io.Writer, a *admin.Admin, sel admin.Selection, op string, where string) error {
	do := a.Replay
	if op == "purge" {
		do = a.Purge
	}
	res, err := do(ctx, sel)
	printMissing(stdout, res.Missing)
	switch {
	case err == nil && res.Selected == 0:
		fmt.Fprintln(stdout, "no dead letters match: nothing to do")
		return nil
	case res.Selected > 0:
		fmt.Fprintf(stdout, "%s: %d of %d dead letters", op, res.Done, res.Selected)
		if res.Gone > 0 {
			fmt.Fprintf(stdout, " (%d were gone already: changed by someone else meanwhile)", res.Gone)
		}
		fmt.Fprintln(stdout)
	}
	for _, r := range res.Refused {
		fmt.Fprintf(stdout, "not replayed: dead letter %d (message id %s): %s\n", r.ID, clean(r.MessageID), r.Reason())
	}
	if errors.Is(err, admin.ErrRefused) {
		return fmt.Errorf("%d dead letters not replayed (listed above): %w", len(res.Refused), admin.ErrRefused)
	}
	if err != nil {
		return changeError(where, err)
	}
	return nil
}

// printMissing lists the ids given that do not exist (any more), skipped
// with --skip-missing.
func printMissing(w io.Writer, ids []int64) {
	if len(ids) == 0 {
		return
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	fmt.Fprintf(w, "not found (already replayed or purged, or never existed), skipped: %d ids: %s\n", len(ids), strings.Join(s, ", "))
}

// changeError is selectionError for replay and purge: unknown ids say how
// to go on.
func changeError(where string, err error) error {
	if errors.Is(err, admin.ErrUnknownIDs) {
		return fmt.Errorf("%w: %w; check the ids (relay dlq list), or add --skip-missing to change the others", ErrUsage, err)
	}
	return selectionError(where, err)
}
