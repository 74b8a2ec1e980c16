package main

import (
	"flag"
	"math"
	"time"

	"github.com/IBM/sarama"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/cli"
	"github.com/outboxrelay/outbox/publisher/kafka"
)

// intLimits are the ranges of the numeric flags, checked when a flag or
// its variable is given (a default of 0 may mean "automatic"). Each
// command has the flags it declares; the others are skipped.
var intLimits = []struct {
	name   string
	lo, hi int64
	note   string
}{
	{"shards", 1, outbox.MaxNumShards, "it must equal the application's outbox.Config.NumShards"},
	{"batch-size", 1, 100_000, ""},
	{"batch-bytes", 1024, math.MaxInt64, ""},
	{"max-attempts", 1, math.MaxInt64, ""},
	{"db-max-conns", 2, 1000, "the relay uses one connection for leases and one for the outbox"},
	{"kafka-max-message-bytes", 1024, int64(sarama.MaxRequestSize) - 1, "leave it unset to use the broker's message.max.bytes"},
	{"chunk-size", 1, dialect.MaxReplayIDs, "dead letters changed per transaction"},
}

// durationLimits are the least values of the duration flags.
var durationLimits = []struct {
	name string
	lo   time.Duration
	note string
}{
	{"poll-interval", time.Millisecond, ""},
	{"lease-duration", 100 * time.Millisecond, ""},
	{"retry-backoff", time.Millisecond, ""},
	{"retry-backoff-max", time.Millisecond, ""},
	{"outage-backoff", time.Millisecond, ""},
	{"outage-backoff-max", time.Millisecond, ""},
	{"probe-interval", time.Millisecond, ""},
	{"publish-timeout", time.Millisecond, ""},
	{"shutdown-timeout", time.Millisecond, ""},
	{"wait-for-database", 0, "0 does not wait"},
	{"lock-timeout", time.Millisecond, ""},
	{"health-max-stall", 0, "0: the longer of --publish-timeout and --poll-interval, + --lease-duration + 30s"},
	{"metrics-refresh-interval", time.Millisecond, ""},
}

// choiceLimits are the values of the flags that take a name.
var choiceLimits = []struct {
	name    string
	choices []string
	note    string
}{
	{"kafka-compression", []string{"none", "gzip", "snappy", "lz4", "zstd"}, ""},
	{"kafka-partitioner", []string{"hash", "murmur2"}, ""},
	{"kafka-sasl-mechanism", []string{"", kafka.MechanismPlain, kafka.MechanismSCRAMSHA256, kafka.MechanismSCRAMSHA512}, "empty: no SASL"},
	{"log-format", []string{"text", "json"}, ""},
	{"log-level", []string{"debug", "info", "warn", "error"}, ""},
}

// limitFlags applies intLimits, durationLimits and choiceLimits to the
// flags fs has.
func limitFlags(fs *flag.FlagSet) {
	for _, l := range intLimits {
		if fs.Lookup(l.name) != nil {
			cli.Range(fs, l.name, l.lo, l.hi, l.note)
		}
	}
	for _, l := range choiceLimits {
		if fs.Lookup(l.name) != nil {
			cli.OneOf(fs, l.name, l.choices, l.note)
		}
	}
	for _, l := range durationLimits {
		if fs.Lookup(l.name) != nil {
			cli.DurationAtLeast(fs, l.name, l.lo, l.note)
		}
	}
	if fs.Lookup("prune-interval") != nil {
		cli.DurationOffOrAtLeast(fs, "prune-interval", minPruneInterval, "0 never prunes")
	}
}
