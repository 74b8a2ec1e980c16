// Command outbox-demo runs the whole outbox pipeline on this machine with
// nothing to install: a SQLite database in a temporary directory, an
// in-process Kafka-protocol broker on loopback, writers that commit orders
// with outbox messages (rolling some back on purpose), relays, and a
// consumer that checks the topic against what was committed.
//
//	go run ./cmd/outbox-demo
//	go run ./cmd/outbox-demo -n 100000 -relays 3 -writers 16
//
// It prints one summary line on stdout and exits 0 only if no committed
// message was lost, no rolled-back message was published and every key kept
// its order; 1 otherwise, 2 on bad flags.
//
// It is a command of its own, not a subcommand of relay, so that relay's
// binary does not link the in-process broker (franz-go's kfake).
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // the demo's database

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/internal/cli"
	"github.com/outboxrelay/outbox/internal/localkafka"
	"github.com/outboxrelay/outbox/internal/verify"
	"github.com/outboxrelay/outbox/migrations"
	"github.com/outboxrelay/outbox/publisher/kafka"
)

const demoAbout = `Runs the whole pipeline on this machine with nothing to install: a SQLite
database in a temporary directory, an in-process Kafka-protocol broker on
loopback, writer goroutines that commit orders with outbox messages (and roll
some back on purpose), two relays, and a consumer that reads the topic back
and checks it against what was committed. It exits 0 only if no committed
message is lost, no rolled-back message is published and every key kept its
order.`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// realMain runs the demo with args and returns the exit status: 0 when the
// demo's checks pass (or for --help), 1 when they fail, 2 on bad flags.
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Exit(stderr, "outbox-demo", "", runDemo(ctx, args, stdout, stderr), errUsage)
}

// errUsage is wrapped by the errors of bad flags, which exit with status 2.
var errUsage = errors.New("usage")

// sqliteDSN are the pragmas the relay needs on SQLite (those relay run
// adds to a sqlite: URL): WAL, a busy timeout, immediate transactions.
const sqliteDSN = "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(20000)&_pragma=synchronous(NORMAL)&_txlock=immediate"

const demoTopic = "demo.orders"

// errDemoFailed is returned when the demo's checks fail.
var errDemoFailed = errors.New("demo: a guarantee was violated (see the summary line)")

// demoOptions are the flags of outbox-demo.
type demoOptions struct {
	n, writers, keys, relays, rollbackPct, partitions int
	timeout                                           time.Duration
	logLevel                                          string
}

func parseDemoFlags(args []string, help io.Writer) (*demoOptions, error) {
	fs := cli.FlagSet(cli.Usage{Program: "outbox-demo", About: demoAbout, FlagsHeading: "Flags:", ShortDash: true,
		Examples: "  go run ./cmd/outbox-demo\n  go run ./cmd/outbox-demo -n 100000 -relays 3 -writers 16"}, help)
	o := &demoOptions{}
	fs.IntVar(&o.n, "n", 20000, "messages to enqueue (committed and rolled back)")
	fs.IntVar(&o.writers, "writers", 8, "writer goroutines")
	fs.IntVar(&o.keys, "keys", 200, "distinct message keys (customers)")
	fs.IntVar(&o.relays, "relays", 2, "relays publishing side by side")
	fs.IntVar(&o.rollbackPct, "rollback-percent", 10, "share of transactions rolled back on purpose")
	fs.IntVar(&o.partitions, "partitions", 8, "partitions of the demo topic")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up when the topic is not complete by then")
	fs.StringVar(&o.logLevel, "log-level", "warn", "relay log level: debug, info, warn or error")
	cli.OneOf(fs, "log-level", []string{"debug", "info", "warn", "error"}, "")
	if err := cli.Parse(fs, args, "go run ./cmd/outbox-demo --help"); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q; see go run ./cmd/outbox-demo --help", errUsage, fs.Arg(0))
	}
	switch {
	case o.n < 1, o.writers < 1, o.keys < o.writers, o.relays < 1, o.partitions < 1, o.rollbackPct < 0, o.rollbackPct > 90:
		return nil, fmt.Errorf("%w: need -n >= 1, -writers >= 1, -keys >= -writers, -relays >= 1, -partitions >= 1, 0 <= -rollback-percent <= 90", errUsage)
	}
	return o, nil
}

// runDemo runs the demo until its checks pass or fail, or ctx ends.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseDemoFlags(args, stdout)
	if err != nil {
		return err
	}
	progress := newProgress(stderr) // looks at the terminal before the wrap
	// Relay logs and the progress line share stderr: one writer at a time.
	stderr = &lockedWriter{w: stderr}
	progress.w = stderr
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil { // checked by cli.OneOf
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	dir, err := os.MkdirTemp("", "outbox-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dsn := "file:" + filepath.Join(dir, "demo.db") + sqliteDSN
	appDB, err := openDemoDB(dsn)
	if err != nil {
		return err
	}
	defer appDB.Close()
	if err := migrations.Up(ctx, appDB, dialect.SQLite()); err != nil {
		return err
	}
	broker, err := localkafka.Start(int32(o.partitions), []string{demoTopic})
	if err != nil {
		return err
	}
	defer broker.Close()
	fmt.Fprintf(stderr, "demo: SQLite at %s, Kafka-protocol broker at %v, topic %s (%d partitions)\n",
		filepath.Join(dir, "demo.db"), broker.Addrs, demoTopic, o.partitions)

	ledger := verify.New()
	stopConsumer, err := consumeDemo(ctx, broker, ledger)
	if err != nil {
		return err
	}
	defer stopConsumer()
	rs, err := startDemoRelays(ctx, dsn, broker, o.relays, log)
	defer rs.stop()
	if err != nil {
		return err
	}
	ob, err := outbox.New(outbox.Config{Dialect: dialect.SQLite(), MaxMessageBytes: rs.maxMessageBytes})
	if err != nil {
		return err
	}
	w := startDemoWriters(ctx, appDB, ob, ledger, o)
	lastPublished, err := w.await(ctx, ledger, progress)
	if err != nil {
		cancel()
		return err
	}
	progress.finish()
	rs.stop()
	stopConsumer()
	return demoReport(stdout, stderr, ledger.Summary(), lastPublished.Sub(w.started))
}

// openDemoDB opens the demo's SQLite database.
func openDemoDB(dsn string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn)
	if err == nil {
		db.SetMaxOpenConns(4)
	}
	return db, err
}

// consumeDemo reads the demo topic into ledger until the returned stop is
// called (stop waits for the consumer to end).
func consumeDemo(ctx context.Context, broker *localkafka.Broker, ledger *verify.Ledger) (stop func(), err error) {
	consumer, err := localkafka.NewConsumer(broker.Addrs, demoTopic)
	if err != nil {
		return nil, err
	}
	consumed := make(chan struct{})
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		defer close(consumed)
		for cctx.Err() == nil {
			for _, r := range consumer.Poll(cctx) {
				ledger.Observe(string(localkafka.Header(r, outbox.HeaderID)))
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-consumed
			consumer.Close()
		})
	}, nil
}

// demoRelays are the demo's relays, each with its own pool and publisher.
type demoRelays struct {
	maxMessageBytes int // the publishers' limit, for the outbox
	cancel          context.CancelFunc
	wg              sync.WaitGroup
	closers         []func() error
	once            sync.Once
}

// startDemoRelays starts n relays; stop stops them and closes their pools
// and publishers (also after an error).
func startDemoRelays(ctx context.Context, dsn string, broker *localkafka.Broker, n int, log *slog.Logger) (*demoRelays, error) {
	rctx, cancel := context.WithCancel(ctx)
	rs := &demoRelays{cancel: cancel}
	for i := range n {
		db, err := openDemoDB(dsn)
		if err != nil {
			return rs, err
		}
		rs.closers = append(rs.closers, db.Close)
		pub, err := kafka.New(kafka.Config{Brokers: broker.Addrs, ClientID: fmt.Sprintf("demo-relay-%d", i)})
		if err != nil {
			return rs, err
		}
		rs.closers = append(rs.closers, pub.Close)
		rs.maxMessageBytes = pub.MaxMessageBytes()
		relay, err := outbox.NewRelay(db, pub, outbox.RelayConfig{
			Dialect: dialect.SQLite(), ID: fmt.Sprintf("demo-relay-%d", i), Logger: log,
			LeaseDuration: 5 * time.Second,
		})
		if err != nil {
			return rs, err
		}
		rs.wg.Go(func() { _ = relay.Run(rctx) })
	}
	return rs, nil
}

func (rs *demoRelays) stop() {
	rs.once.Do(func() {
		rs.cancel()
		rs.wg.Wait()
		for i := len(rs.closers) - 1; i >= 0; i-- {
			_ = rs.closers[i]()
		}
	})
}

// demoWriters are the demo's writer goroutines and their counts.
type demoWriters struct {
	started               time.Time
	committed, rolledBack atomic.Int64
	errs                  chan error
	done                  chan struct{}
}

func startDemoWriters(ctx context.Context, db *sql.DB, ob *outbox.Outbox, ledger *verify.Ledger, o *demoOptions) *demoWriters {
	w := &demoWriters{started: time.Now(), errs: make(chan error, o.writers), done: make(chan struct{})}
	var wg sync.WaitGroup
	for i := range o.writers {
		share := o.n / o.writers
		if i < o.n%o.writers {
			share++
		}
		wg.Go(func() {
			if err := demoWriter(ctx, db, ob, ledger, i, o.writers, o.keys, share, o.rollbackPct, &w.committed, &w.rolledBack); err != nil {
				w.errs <- err
			}
		})
	}
	go func() { wg.Wait(); close(w.done) }()
	return w
}

// await shows progress until the writers are done and everything they
// committed is on the topic, or ctx ends; it returns when the last record
// was seen.
func (w *demoWriters) await(ctx context.Context, ledger *verify.Ledger, prog *progress) (time.Time, error) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var lastPublished time.Time
	for {
		select {
		case <-ctx.Done():
			return lastPublished, nil
		case err := <-w.errs:
			return lastPublished, fmt.Errorf("writer: %w", err)
		case <-tick.C:
		}
		c, p := w.committed.Load(), int64(ledger.Published())
		if p > 0 {
			lastPublished = time.Now()
		}
		prog.update(c+w.rolledBack.Load(), c, p, time.Since(w.started))
		select {
		case <-w.done:
			if p >= c {
				return lastPublished, nil
			}
		default:
		}
	}
}

// demoReport prints the demo's line and fails it when the ledger does.
func demoReport(stdout, stderr io.Writer, s verify.Summary, elapsed time.Duration) error {
	rate := 0.0
	if elapsed > 0 {
		rate = float64(s.Published) / elapsed.Seconds()
	}
	fmt.Fprintf(stdout, "demo: %s rate=%.0f msg/s\n", s, rate)
	if s.Unknown > 0 {
		fmt.Fprintf(stderr, "demo: %d records on the topic that no writer committed\n", s.Unknown)
	}
	if !s.OK() {
		return errDemoFailed
	}
	return nil
}

// demoWriter commits orders of its own customers (so each key's sequence is
// well defined), each with 1-5 outbox messages, rolling back rollbackPct% of
// its transactions on purpose.
func demoWriter(ctx context.Context, db *sql.DB, ob *outbox.Outbox, ledger *verify.Ledger,
	w, writers, keys, n, rollbackPct int, committed, rolledBack *atomic.Int64) error {
	rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
	seq := map[string]int{}
	myKeys := keys / writers
	for sent := 0; sent < n && ctx.Err() == nil; {
		size := min(1+rng.IntN(5), n-sent)
		abort := rng.IntN(100) < rollbackPct
		msgs := make([]outbox.Message, size)
		next := map[string]int{}
		for i := range msgs {
			key := "customer-" + strconv.Itoa(w+writers*rng.IntN(myKeys))
			next[key]++
			s := seq[key] + next[key]
			msgs[i] = outbox.Message{
				ID: outbox.NewMessageID(), Topic: demoTopic, Key: []byte(key),
				Value:   fmt.Appendf(nil, `{"customer":%q,"seq":%d,"writer":%d}`, key, s, w),
				Headers: []outbox.Header{{Key: "content-type", Value: []byte("application/json")}},
			}
			if abort {
				ledger.RolledBack(msgs[i].ID)
			} else {
				ledger.Committed(msgs[i].ID, key, s)
			}
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "SELECT 1"); err != nil { // the business write would go here
			tx.Rollback()
			return err
		}
		if err := ob.Enqueue(ctx, tx, msgs...); err != nil {
			tx.Rollback()
			return err
		}
		if abort {
			if err := tx.Rollback(); err != nil {
				return err
			}
			rolledBack.Add(int64(size))
		} else {
			if err := tx.Commit(); err != nil {
				return err
			}
			committed.Add(int64(size))
			for k, v := range next {
				seq[k] += v
			}
		}
		sent += size
	}
	return ctx.Err()
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// progress prints a live status line: rewritten in place on a terminal,
// every two seconds otherwise.
type progress struct {
	w        io.Writer
	tty      bool
	last     time.Time
	lastPub  int64
	lastTime time.Duration
	rate     float64
}

func newProgress(w io.Writer) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, tty: tty}
}

func (p *progress) update(enqueued, committed, published int64, elapsed time.Duration) {
	if dt := (elapsed - p.lastTime).Seconds(); dt >= 0.5 {
		p.rate = float64(published-p.lastPub) / dt
		p.lastPub, p.lastTime = published, elapsed
	}
	line := fmt.Sprintf("demo: %5.1fs enqueued=%d committed=%d published=%d backlog=%d rate=%.0f msg/s",
		elapsed.Seconds(), enqueued, committed, published, max(committed-published, 0), p.rate)
	if p.tty {
		fmt.Fprintf(p.w, "\r%-100s", line)
		return
	}
	if time.Since(p.last) >= 2*time.Second {
		fmt.Fprintln(p.w, line)
		p.last = time.Now()
	}
}

func (p *progress) finish() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
