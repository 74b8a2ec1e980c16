package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/outboxrelay/outbox/admin"
)

const statsAbout = `Shows the state of the outbox: the totals an operator checks first (pending
messages, the oldest one's age, messages waiting for a retry, dead letters,
relays alive), then per topic, the messages waiting for a retry with their
last errors, the shards and the relays. It only reads, takes no lock a relay
waits for, and answers quickly on any size of outbox: above 100,000 pending
messages the per-topic and per-shard counts, and each topic's oldest age,
are estimated from a sample (marked "~"; a small topic may then be missing);
messages waiting for a retry and dead letters are read up to 10,000 (more
shows as ">=10000"); above 1,000 waiting, those listed and their errors
are of 1,000 of them taken in no particular order, and say so. A part that fails or takes
more than 5s is named, its figures print as "?" (null in JSON), and the
rest is printed; the command then exits 1. The database URL comes from OUTBOX_DATABASE_URL or
--database-url-file.`

const statsExamples = `  OUTBOX_DATABASE_URL=postgres://app@db:5432/app relay stats
  relay stats --json | jq '.pending, .oldest_age_ns / 1e9'
  relay stats --all-shards --lease-duration 30s`

func cmdStats(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := newAdminFlagSet("stats", statsAbout, statsExamples, stdout)
	af := addAdminFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON (durations in nanoseconds) instead of tables")
	allShards := fs.Bool("all-shards", false, "list every shard, not only those with pending messages or an expired lease")
	if err := parseFlags(fs, args, adminEnv(getenv)); err != nil {
		return err
	}
	return af.withAdmin(getenv, func(ctx context.Context, a *admin.Admin, where string) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		s, err := a.Stats(ctx)
		if err != nil {
			return dbError(where, err)
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(s); err != nil {
				return err
			}
		} else {
			printStats(stdout, where, s, *allShards)
		}
		return incomplete(where, s.Failed)
	})
}

// incomplete is the error of stats that could not read every part (they
// printed what they could), nil when they read everything.
func incomplete(where string, failed []admin.StepFailure) error {
	if len(failed) == 0 {
		return nil
	}
	steps := make([]string, len(failed))
	for i, f := range failed {
		steps[i] = f.Step
	}
	return dbError(where, fmt.Errorf("stats incomplete: could not read %s (the rest is printed above)", strings.Join(steps, ", ")))
}

// atLeast prints n, as ">=n" when it is a lower bound.
func atLeast(n int64, capped bool) string {
	if capped {
		return fmt.Sprintf(">=%d", n)
	}
	return strconv.FormatInt(n, 10)
}

// orUnknown returns v, or "?" when the part it belongs to could not be
// read: its figure is not a zero to believe.
func orUnknown(v string, read bool) string {
	if !read {
		return "?"
	}
	return v
}

// printStats writes s as tables.
func printStats(w io.Writer, where string, s admin.Stats, allShards bool) {
	est := ""
	if s.Estimated {
		est = "~"
	}
	pending, retries, dead := s.Read(admin.StepPending), s.Read(admin.StepRetries), s.Read(admin.StepDeadLetters)
	fmt.Fprintf(w, "%s at %s\n", where, s.At.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "pending %s  oldest %s  retrying %s  dead letters %s  relays alive %s\n",
		orUnknown(est+strconv.FormatInt(s.Pending, 10), pending), orUnknown(age(s.OldestAge), pending),
		orUnknown(atLeast(s.Retrying, s.RetryingCapped), retries), orUnknown(atLeast(s.DeadLetters, s.DeadLettersCapped), dead),
		orUnknown(strconv.Itoa(s.RelaysAlive), s.Read(admin.StepRelays)))
	if s.Estimated {
		fmt.Fprintln(w, "(~: estimated from a sample of the outbox; the topics come from the sample too: a small topic may be missing)")
	}
	if s.DeadLettersCapped {
		fmt.Fprintf(w, "(dead letters per topic: of the newest %d)\n", s.DeadLetters)
	}
	for _, f := range s.Failed {
		fmt.Fprintf(w, "could not read %s: %s\n", f.Step, oneLine(f.Err))
	}
	table(w, "\nTOPIC\tPENDING\tOLDEST\tDEAD LETTERS\tNEWEST DEAD", len(s.Topics), func(tw io.Writer, i int) {
		t := s.Topics[i]
		oldest := age(t.OldestAge)
		if t.OldestAge > 0 {
			oldest = est + oldest
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", clean(t.Topic), orUnknown(est+strconv.FormatInt(t.Pending, 10), pending), orUnknown(oldest, pending),
			orUnknown(strconv.FormatInt(t.DeadLetters, 10), dead), orUnknown(age(t.LastDeadAge), dead))
	})
	printRetries(w, s)
	var shards []admin.ShardStats
	for _, sh := range s.Shards {
		if allShards || sh.Pending > 0 || sh.OldestAge > 0 || sh.Owner == "" || sh.LeaseLeft < 0 {
			shards = append(shards, sh)
		}
	}
	switch {
	case !s.Read(admin.StepShards):
		fmt.Fprintln(w, "\nSHARDS: ? (could not be read)")
	case len(s.Shards) == 0:
		fmt.Fprintln(w, "\nSHARDS: none yet (the first relay to start creates them)")
	default:
		fmt.Fprintf(w, "\nSHARDS: %d (%d listed: pending, free or expired; --all-shards for all)\n", len(s.Shards), len(shards))
	}
	table(w, "SHARD\tOWNER\tLEASE LEFT\tPENDING\tOLDEST", len(shards), func(tw io.Writer, i int) {
		sh := shards[i]
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", sh.Shard, orDash(sh.Owner), sh.LeaseLeft.Round(time.Millisecond),
			orUnknown(est+strconv.FormatInt(sh.Pending, 10), pending), age(sh.OldestAge))
	})
	table(w, "\nRELAY\tHEARTBEAT AGE\tALIVE", len(s.Relays), func(tw io.Writer, i int) {
		r := s.Relays[i]
		fmt.Fprintf(tw, "%s\t%s\t%v\n", clean(r.ID), r.HeartbeatAge.Round(time.Millisecond), r.Alive)
	})
}

// printRetries prints the messages waiting for a retry and their errors
// (of s.SampledFrom of them, taken in no particular order when fewer than
// all: the soonest of the sample, not of all).
func printRetries(w io.Writer, s admin.Stats) {
	if !s.Read(admin.StepRetries) {
		fmt.Fprintln(w, "\nWAITING FOR A RETRY: ? (could not be read)")
		return
	}
	head, errHead := fmt.Sprintf("%d of %d, next attempt first", len(s.Waiting), s.Retrying), ""
	if s.RetryingCapped || s.SampledFrom < s.Retrying {
		head = fmt.Sprintf("%d of %s, taken from %d of them in no particular order, the next attempt of those first",
			len(s.Waiting), atLeast(s.Retrying, s.RetryingCapped), s.SampledFrom)
		errHead = fmt.Sprintf(" (of %d of them)", s.SampledFrom)
	}
	table(w, "\nWAITING FOR A RETRY ("+head+")\nROW\tMESSAGE ID\tTOPIC\tSHARD\tATTEMPTS\tNEXT ATTEMPT IN\tLAST ERROR",
		len(s.Waiting), func(tw io.Writer, i int) {
			x := s.Waiting[i]
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%s\t%s\n", x.RowID, clean(x.MessageID), clean(x.Topic), x.Shard, x.Attempts,
				x.NextAttemptIn.Round(time.Second), oneLine(x.LastError))
		})
	table(w, "\nCOUNT\tLAST ERROR OF MESSAGES WAITING"+errHead, len(s.Errors), func(tw io.Writer, i int) {
		fmt.Fprintf(tw, "%d\t%s\n", s.Errors[i].Count, oneLine(s.Errors[i].Err))
	})
}
