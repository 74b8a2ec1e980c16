package main

import (
	"strings"
	"testing"
	"time"
)

// cliCase is one command line given to the built binary: what a user
// types, the exit status, and the message they see on stderr (exactly,
// one line) or a part of stdout.
type cliCase struct {
	name   string
	env    []string
	args   []string
	code   int
	stderr string // the whole of stderr, without its final newline
	stdout string // a part of stdout
}

func runCLICases(t *testing.T, cases []cliCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := runRelay(t, tc.name, tc.env, 20*time.Second, tc.args...)
			if code := p.ExitCode(); code != tc.code {
				t.Errorf("relay %s: exit %d, want %d\nstderr: %s", strings.Join(tc.args, " "), code, tc.code, p.stderr.String())
			}
			if got := strings.TrimSuffix(p.stderr.String(), "\n"); got != tc.stderr {
				t.Errorf("relay %s:\nstderr %q\nwant   %q", strings.Join(tc.args, " "), got, tc.stderr)
			}
			if !strings.Contains(p.stdout.String(), tc.stdout) {
				t.Errorf("relay %s: stdout lacks %q:\n%s", strings.Join(tc.args, " "), tc.stdout, p.stdout.String())
			}
		})
	}
}

// TestE2EConfigErrors: every bad setting says what was expected, with an
// example, in the same words for a flag and its environment variable.
func TestE2EConfigErrors(t *testing.T) {
	base := []string{"OUTBOX_DATABASE_URL=sqlite:" + t.TempDir() + "/x.db", "OUTBOX_KAFKA_BROKERS=127.0.0.1:1"}
	env := func(kv ...string) []string { return append(append([]string{}, base...), kv...) }
	runCLICases(t, []cliCase{
		{"duration flag", base, []string{"run", "--poll-interval", "250"}, 2,
			"relay run: --poll-interval=250: a positive duration such as 250ms or 2s", ""},
		{"duration env", env("OUTBOX_POLL_INTERVAL=250"), []string{"run"}, 2,
			"relay run: OUTBOX_POLL_INTERVAL=250: a positive duration such as 250ms or 2s", ""},
		{"bool flag", base, []string{"run", "--kafka-tls=yes"}, 2,
			"relay run: --kafka-tls=yes: true or false", ""},
		{"bool env", env("OUTBOX_KAFKA_TLS=yes"), []string{"run"}, 2,
			"relay run: OUTBOX_KAFKA_TLS=yes: true or false", ""},
		{"number flag", base, []string{"run", "--batch-size", "many"}, 2,
			"relay run: --batch-size=many: a whole number from 1 to 100000", ""},
		{"shards 0", base, []string{"run", "--shards", "0"}, 2,
			"relay run: --shards=0: a whole number from 1 to 4096 (it must equal the application's outbox.Config.NumShards)", ""},
		{"shards env", env("OUTBOX_SHARDS=5000"), []string{"run"}, 2,
			"relay run: OUTBOX_SHARDS=5000: a whole number from 1 to 4096 (it must equal the application's outbox.Config.NumShards)", ""},
		{"max message bytes", base, []string{"run", "--kafka-max-message-bytes", "100"}, 2,
			"relay run: --kafka-max-message-bytes=100: a whole number from 1024 to 104857599 (leave it unset to use the broker's message.max.bytes)", ""},
		{"lease", base, []string{"run", "--lease-duration", "10ms"}, 2,
			"relay run: --lease-duration=10ms: a duration of at least 100ms, such as 15s or 1m30s", ""},
		{"negative", base, []string{"run", "--prune-interval", "-1h"}, 2,
			"relay run: --prune-interval=-1h: 0, or a duration of at least 1m0s such as 1h (0 never prunes)", ""},
		{"max attempts", base, []string{"run", "--max-attempts=0"}, 2,
			"relay run: --max-attempts=0: a whole number of at least 1", ""},
		{"db conns", env("OUTBOX_DB_MAX_CONNS=1"), []string{"run"}, 2,
			"relay run: OUTBOX_DB_MAX_CONNS=1: a whole number from 2 to 1000 (the relay uses one connection for leases and one for the outbox)", ""},
		{"age env", env("OUTBOX_PRUNE_OLDER_THAN=soon"), []string{"run"}, 2,
			"relay run: OUTBOX_PRUNE_OLDER_THAN=soon: a positive age (examples: 90m, 36h, 30d, 2w)", ""},
		{"choice flag", base, []string{"run", "--kafka-compression", "brotli"}, 2,
			"relay run: --kafka-compression=brotli: one of none, gzip, snappy, lz4 or zstd", ""},
		{"choice env", env("OUTBOX_LOG_LEVEL=loud"), []string{"run"}, 2,
			"relay run: OUTBOX_LOG_LEVEL=loud: one of debug, info, warn or error", ""},
		{"sasl mechanism", base, []string{"run", "--kafka-sasl-mechanism", "GSSAPI"}, 2,
			"relay run: --kafka-sasl-mechanism=GSSAPI: one of PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL)", ""},
		{"sasl without user", base, []string{"run", "--kafka-sasl-mechanism", "PLAIN"}, 2,
			"relay run: --kafka-sasl-user is required with --kafka-sasl-mechanism PLAIN", ""},
		{"backoffs", base, []string{"run", "--retry-backoff", "10s", "--retry-backoff-max", "1s"}, 2,
			"relay run: --retry-backoff-max (1s) cannot be shorter than --retry-backoff (10s)", ""},
		{"kafka version", base, []string{"run", "--kafka-version", "0.8"}, 2,
			`relay run: --kafka-version must be a Kafka version such as "3.7.0"; got "0.8"`, ""},
		{"no brokers", base[:1], []string{"run"}, 2,
			"relay run: --kafka-brokers (OUTBOX_KAFKA_BROKERS) is required", ""},
		{"health stall flag", base, []string{"run", "--health-max-stall", "-1s"}, 2,
			"relay run: --health-max-stall=-1s: a duration such as 250ms or 2s, or 0 (0: the longer of --publish-timeout and --poll-interval, + --lease-duration + 30s)", ""},
		{"health stall env", env("OUTBOX_HEALTH_MAX_STALL=-1s"), []string{"run"}, 2,
			"relay run: OUTBOX_HEALTH_MAX_STALL=-1s: a duration such as 250ms or 2s, or 0 (0: the longer of --publish-timeout and --poll-interval, + --lease-duration + 30s)", ""},
		{"metrics refresh flag", base, []string{"run", "--metrics-refresh-interval", "0"}, 2,
			"relay run: --metrics-refresh-interval=0: a positive duration such as 250ms or 2s", ""},
		{"metrics refresh env", env("OUTBOX_METRICS_REFRESH_INTERVAL=0"), []string{"run"}, 2,
			"relay run: OUTBOX_METRICS_REFRESH_INTERVAL=0: a positive duration such as 250ms or 2s", ""},
		{"chunk size 0", base, []string{"prune", "--chunk-size", "0"}, 2,
			"relay prune: --chunk-size=0: a whole number from 1 to 1000 (dead letters changed per transaction)", ""},
		{"chunk size negative", base, []string{"dlq", "replay", "--all", "--yes", "--chunk-size", "-3"}, 2,
			"relay dlq: --chunk-size=-3: a whole number from 1 to 1000 (dead letters changed per transaction)", ""},
		{"chunk size too big", base, []string{"stats", "--chunk-size=1001"}, 2,
			"relay stats: --chunk-size=1001: a whole number from 1 to 1000 (dead letters changed per transaction)", ""},
		{"unknown flag", base, []string{"run", "--shard", "3"}, 2,
			"relay run: --shard is not a flag (did you mean --shards?); see relay run --help", ""},
		{"unknown single dash", base, []string{"run", "-polll-interval=1s"}, 2,
			"relay run: --polll-interval is not a flag (did you mean --poll-interval?); see relay run --help", ""},
		{"unknown far", base, []string{"run", "--xyzzy"}, 2,
			"relay run: --xyzzy is not a flag; see relay run --help", ""},
		{"missing value", base, []string{"run", "--shards"}, 2,
			"relay run: --shards needs a value; see relay run --help", ""},
		{"argument", base, []string{"run", "now"}, 2,
			`relay run: unexpected argument "now"; see relay run --help`, ""},
		{"migrate unknown", base, []string{"migrate", "--nope"}, 2,
			"relay migrate: --nope is not a flag; see relay migrate --help", ""},
		{"stats unknown", base, []string{"stats", "--jsn"}, 2,
			"relay stats: --jsn is not a flag (did you mean --json?); see relay stats --help", ""},
		{"dlq list unknown", base, []string{"dlq", "list", "--topc", "x"}, 2,
			"relay dlq: --topc is not a flag (did you mean --topic?); see relay dlq list --help", ""},
		{"command typo", base, []string{"mirgate"}, 2,
			`relay: unknown command "mirgate" (did you mean "migrate"?); see relay --help`, ""},
		{"unknown command", base, []string{"frobnicate"}, 2,
			`relay: unknown command "frobnicate"; see relay --help`, ""},
		{"dlq command typo", base, []string{"dlq", "lsit"}, 2,
			`relay dlq: unknown dlq command "lsit" (did you mean "list"?); see relay dlq --help`, ""},
		{"run help", base, []string{"run", "--help"}, 0, "", "Usage: relay run [flags]"},
		{"run -h", base, []string{"run", "-h"}, 0, "", "env OUTBOX_POLL_INTERVAL"},
		{"migrate help", base, []string{"migrate", "--help"}, 0, "", "Usage: relay migrate [flags]"},
		{"relay help", base, []string{"--help"}, 0, "", "Commands:"},
	})
}

// TestE2EOtelConfigErrors: an OTEL_* value relay run cannot honour fails it
// at start, with status 2 and a line naming the variable and what it
// accepts (the SDK alone would log a line and go on with its default).
func TestE2EOtelConfigErrors(t *testing.T) {
	base := []string{"OUTBOX_DATABASE_URL=sqlite:" + t.TempDir() + "/x.db", "OUTBOX_KAFKA_BROKERS=127.0.0.1:1"}
	env := func(kv ...string) []string { return append(append([]string{}, base...), kv...) }
	runCLICases(t, []cliCase{
		{"sampler", env("OTEL_TRACES_SAMPLER=bogus"), []string{"run"}, 2,
			`relay run: OTEL_TRACES_SAMPLER="bogus" is not supported (use one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio)`, ""},
		{"sampler ratio", env("OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG=2"), []string{"run"}, 2,
			`relay run: OTEL_TRACES_SAMPLER_ARG="2" must be a ratio between 0 and 1`, ""},
		{"protocol", env("OTEL_EXPORTER_OTLP_PROTOCOL=carrier-pigeon"), []string{"run"}, 2,
			`relay run: OTEL_EXPORTER_OTLP_PROTOCOL="carrier-pigeon" is not supported (use one of http/protobuf)`, ""},
		{"endpoint", env("OTEL_EXPORTER_OTLP_ENDPOINT=not a url"), []string{"run"}, 2,
			`relay run: OTEL_EXPORTER_OTLP_ENDPOINT="not a url" is not a collector URL (use http://host:port or https://host:port, e.g. http://otel-collector:4318)`, ""},
		{"traces endpoint without scheme", env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=collector:4318"), []string{"run"}, 2,
			`relay run: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="collector:4318" is not a collector URL (use http://host:port or https://host:port, e.g. http://otel-collector:4318)`, ""},
		{"endpoint without host, its password hidden", env("OTEL_EXPORTER_OTLP_ENDPOINT=https://user:secret@/v1"), []string{"run"}, 2,
			`relay run: OTEL_EXPORTER_OTLP_ENDPOINT="https://REDACTED@/v1" is not a collector URL (use http://host:port or https://host:port, e.g. http://otel-collector:4318)`, ""},
		{"timeout", env("OTEL_EXPORTER_OTLP_TIMEOUT=10s"), []string{"run"}, 2,
			`relay run: OTEL_EXPORTER_OTLP_TIMEOUT="10s" is not supported (use a whole number, of milliseconds for a delay or timeout)`, ""},
		{"compression", env("OTEL_EXPORTER_OTLP_COMPRESSION=zstd"), []string{"run"}, 2,
			`relay run: OTEL_EXPORTER_OTLP_COMPRESSION="zstd" is not supported (use one of gzip, none)`, ""},
		{"propagator", env("OTEL_PROPAGATORS=tracecontext,b3"), []string{"run"}, 2,
			`relay run: OTEL_PROPAGATORS: "b3" is not supported (use tracecontext, baggage or none)`, ""},
	})
}
