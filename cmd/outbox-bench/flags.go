package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/internal/cli"
)

// errUsage is wrapped by every error caused by the command line: such
// errors exit with status 2.
var errUsage = errors.New("usage")

// usageError is an error in the command line (exit status 2). Flag names
// the flag at fault ("" when it is no single flag's).
type usageError struct {
	Flag string
	Msg  string
}

// Error returns "usage: " and the message.
func (e *usageError) Error() string { return errUsage.Error() + ": " + e.Msg }

// Unwrap returns errUsage.
func (e *usageError) Unwrap() error { return errUsage }

// usagef returns a usage error (exit status 2) that names no flag.
func usagef(format string, args ...any) error {
	return &usageError{Msg: fmt.Sprintf(format, args...)}
}

// flagErrorf returns a usage error about the flag name ("--relays"); the
// message starts with that name.
func flagErrorf(name, format string, args ...any) error {
	return &usageError{Flag: name, Msg: name + " " + fmt.Sprintf(format, args...)}
}

// Validators of flag values: each returns nil or a usage error naming the
// flag. firstError runs a list of them.

func checkAtLeast(name string, v, lo int) error {
	if v < lo {
		return flagErrorf(name, "must be at least %d; got %d", lo, v)
	}
	return nil
}

func checkBetween(name string, v, lo, hi int) error {
	if v < lo || v > hi {
		return flagErrorf(name, "must be between %d and %d; got %d", lo, hi, v)
	}
	return nil
}

func checkPositive(name string, d time.Duration) error {
	if d <= 0 {
		return flagErrorf(name, "must be positive; got %s", d)
	}
	return nil
}

func checkNotNegative(name string, d time.Duration) error {
	if d < 0 {
		return flagErrorf(name, "cannot be negative; got %s", d)
	}
	return nil
}

// batchSizeFlag checks --batch-size: 0 (the relay's default) to 100000.
func checkBatchSize(v int) error {
	if v < 0 || v > 100_000 {
		return flagErrorf("--batch-size", "must be between 0 (default) and 100000; got %d", v)
	}
	return nil
}

// firstError returns the first non-nil error of errs.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// newFlagSet returns a flag set whose --help prints about, examples and
// every flag with its default, to out.
func newFlagSet(name, about, examples string, out io.Writer) *flag.FlagSet {
	return cli.FlagSet(cli.Usage{Program: "outbox-bench", Command: name, About: about, Examples: examples,
		FlagsHeading: "Flags:", ShortDash: true}, out)
}

// parseFlags parses args and rejects positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{Msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// ---------------------------------------------------------------------------
// The flags every scenario has

// commonOpts are the flags every scenario has.
type commonOpts struct {
	dialect    string
	dsn        string
	brokers    string
	topic      string
	partitions int
	namespace  string
	cpuprofile string
	brokerRTT  time.Duration // --broker-rtt, of the scenarios that publish
	observe    string        // --observe: metrics, or metrics and tracing (observe.go)
}

const dsnHelp = `database: a postgres:// URL (default $OUTBOX_TEST_POSTGRES_DSN or
postgres://postgres@127.0.0.1:5432/test?sslmode=disable), a go-sql-driver/mysql
DSN (default $OUTBOX_TEST_MYSQL_DSN or root@tcp(127.0.0.1:3306)/test), or for
sqlite the directory of the temporary database file (default: the system's
temporary directory). The run creates and drops its own namespace there`

// addCommon registers the common flags on fs.
func addCommon(fs *flag.FlagSet) *commonOpts {
	var o commonOpts
	fs.StringVar(&o.dialect, "dialect", "postgres", "postgres, mysql or sqlite")
	fs.StringVar(&o.dsn, "dsn", "", dsnHelp)
	fs.StringVar(&o.brokers, "brokers", "", "comma-separated Kafka bootstrap brokers (default: an in-process kfake broker)")
	fs.StringVar(&o.topic, "topic", defaultTopic, "topic to publish to (created if missing)")
	fs.IntVar(&o.partitions, "partitions", defaultPartitions, "partitions of the topics the benchmark creates")
	fs.StringVar(&o.namespace, "namespace", defaultNamespace, "schema (postgres) or database (mysql) created empty for the run and dropped at its end")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile (go tool pprof) of the measured phase to this file:\nthe relay phase (drain), the load (latency), the timed calls (enqueue),\nthe writers (commit), the measured phase (pressure), the relay child's\nlife (memory, idle)")
	fs.StringVar(&o.observe, "observe", "", observeHelp)
	return &o
}

const brokerRTTHelp = `round-trip time put between the in-process kfake broker and every
Kafka client of the run (the relays, raw_broker's producer, the consumers),
on loopback: every connection the broker accepts, whichever address the
client dialed, delays its bytes by half of it each way, in order and
without limiting throughput (pipelined requests overlap). A real cluster
with acks=all takes 1-5ms. Not with --brokers`

// addBrokerRTT registers --broker-rtt, for the scenarios that publish to
// Kafka.
func addBrokerRTT(fs *flag.FlagSet, o *commonOpts) {
	fs.DurationVar(&o.brokerRTT, "broker-rtt", 0, brokerRTTHelp)
}

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// check validates the common flags.
func (o *commonOpts) check() error {
	switch o.dialect {
	case "postgres", "mysql", "sqlite":
	default:
		return flagErrorf("--dialect", "must be postgres, mysql or sqlite; got %q", o.dialect)
	}
	switch o.observe {
	case "", observeMetrics, observeAll:
	default:
		return flagErrorf("--observe", "must be %s or %s; got %q", observeMetrics, observeAll, o.observe)
	}
	if err := outbox.Validate(0, outbox.Message{Topic: o.topic}); err != nil {
		return &usageError{Flag: "--topic", Msg: "--topic: " + err.Error()}
	}
	if err := checkAtLeast("--partitions", o.partitions, 1); err != nil {
		return err
	}
	if !identRE.MatchString(o.namespace) {
		return flagErrorf("--namespace", "must match %s; got %q", identRE, o.namespace)
	}
	if err := checkNotNegative("--broker-rtt", o.brokerRTT); err != nil {
		return err
	}
	if o.brokerRTT > 0 && o.brokers != "" {
		return flagErrorf("--broker-rtt", "delays only the in-process kfake broker: drop it or --brokers")
	}
	if o.brokers != "" && len(o.brokerList()) == 0 {
		return flagErrorf("--brokers", "must list host:port addresses; got %q", o.brokers)
	}
	if o.dialect == "postgres" && o.dsn != "" {
		if u, err := url.Parse(o.dsn); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return flagErrorf("--dsn", "must be a postgres:// URL for --dialect postgres")
		}
	}
	if o.dialect == "mysql" && o.dsn != "" {
		if _, err := mysql.ParseDSN(o.dsn); err != nil {
			return flagErrorf("--dsn", "must be a go-sql-driver/mysql DSN (user:pass@tcp(host:3306)/db) for --dialect mysql")
		}
	}
	return nil
}

// brokerList splits --brokers.
func (o *commonOpts) brokerList() []string {
	var out []string
	for _, b := range strings.Split(o.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// The flags that shape the messages of a load

// loadOpts are the flags that shape the messages a scenario writes.
type loadOpts struct {
	n, valueBytes, keys, shards int
	skew                        string // --key-skew
}

// addLoad registers -n (with the default defN; 0: no -n flag), --value-bytes,
// --keys, --key-skew and --shards, with the help texts of the scenarios that preload
// an outbox (preload) or write as they go.
func addLoad(fs *flag.FlagSet, defN int, preload bool) *loadOpts {
	o := loadOpts{n: 1}
	if defN > 0 {
		fs.IntVar(&o.n, "n", defN, "messages to enqueue")
	}
	fs.IntVar(&o.valueBytes, "value-bytes", 256, "bytes of each message value")
	keysHelp, shardsHelp := "distinct message keys", "outbox shards"
	if preload {
		keysHelp, shardsHelp = "distinct message keys (key-0 ... key-<keys-1>, spread as --key-skew says)", "outbox shards (outbox.Config.NumShards = RelayConfig.NumShards)"
	}
	fs.IntVar(&o.keys, "keys", 1000, keysHelp)
	fs.StringVar(&o.skew, "key-skew", skewUniform, keySkewHelp)
	fs.IntVar(&o.shards, "shards", outbox.DefaultNumShards, shardsHelp)
	return &o
}

// check validates the load flags: the messages must be valid on topic.
func (o *loadOpts) check(topic string) error {
	if err := firstError(
		checkAtLeast("-n", o.n, 1),
		checkAtLeast("--keys", o.keys, 1),
		checkKeySkew(o.skew),
		checkNotNegativeInt("--value-bytes", o.valueBytes),
		checkBetween("--shards", o.shards, 1, outbox.MaxNumShards),
	); err != nil {
		return err
	}
	m := outbox.Message{Topic: topic, Key: []byte("key-" + strconv.Itoa(o.keys)), Value: make([]byte, o.valueBytes)}
	if err := outbox.Validate(0, m); err != nil {
		return usagef("--value-bytes %d: %v", o.valueBytes, err)
	}
	return nil
}

func checkNotNegativeInt(name string, v int) error {
	if v < 0 {
		return flagErrorf(name, "cannot be negative; got %d", v)
	}
	return nil
}

// spec returns the load of these flags on topic.
func (o *loadOpts) spec(topic string) loadSpec {
	return loadSpec{topic: topic, n: o.n, valueBytes: o.valueBytes, keys: o.keys, skew: o.skew, numShards: o.shards}
}
