package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
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

const demoTopic = "demo.orders"

// errDemoFailed is returned when the demo's checks fail.
var errDemoFailed = errors.New("demo: a guarantee was violated (see the summary line)")

func cmdDemo(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := newFlagSet("demo", demoAbout, "  go run ./cmd/relay demo\n  go run ./cmd/relay demo -n 100000 -relays 3 -writers 16", stderr)
	n := fs.Int("n", 20000, "messages to enqueue (committed and rolled back)")
	writers := fs.Int("writers", 8, "writer goroutines")
	keys := fs.Int("keys", 200, "distinct message keys (customers)")
	relays := fs.Int("relays", 2, "relays publishing side by side")
	rollbackPct := fs.Int("rollback-percent", 10, "share of transactions rolled back on purpose")
	partitions := fs.Int("partitions", 8, "partitions of the demo topic")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up when the topic is not complete by then")
	logLevel := fs.String("log-level", "warn", "relay log level: debug, info, warn or error")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	switch {
	case *n < 1, *writers < 1, *keys < *writers, *relays < 1, *partitions < 1, *rollbackPct < 0, *rollbackPct > 90:
		return fmt.Errorf("%w: need -n >= 1, -writers >= 1, -keys >= -writers, -relays >= 1, -partitions >= 1, 0 <= -rollback-percent <= 90", ErrUsage)
	}
	progress := newProgress(stderr) // looks at the terminal before the wrap
	// Relay logs and the progress line share stderr: one writer at a time.
	stderr = &lockedWriter{w: stderr}
	progress.w = stderr
	log, err := newLogger(stderr, "text", *logLevel)
	if err != nil {
		return err
	}
	ctx, stop := signalContext(func(os.Signal) {})
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	dir, err := os.MkdirTemp("", "outbox-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dsn := "file:" + filepath.Join(dir, "demo.db") + "?" + sqliteDefaults
	open := func() (*sql.DB, error) {
		db, err := sql.Open("sqlite", dsn)
		if err == nil {
			db.SetMaxOpenConns(4)
		}
		return db, err
	}
	appDB, err := open()
	if err != nil {
		return err
	}
	defer appDB.Close()
	if err := migrations.Up(ctx, appDB, dialect.SQLite()); err != nil {
		return err
	}
	broker, err := localkafka.Start(int32(*partitions), []string{demoTopic})
	if err != nil {
		return err
	}
	defer broker.Close()
	fmt.Fprintf(stderr, "demo: SQLite at %s, Kafka-protocol broker at %v, topic %s (%d partitions)\n",
		filepath.Join(dir, "demo.db"), broker.Addrs, demoTopic, *partitions)

	ledger := verify.New()
	consumer, err := localkafka.NewConsumer(broker.Addrs, demoTopic)
	if err != nil {
		return err
	}
	defer consumer.Close()
	consumed := make(chan struct{})
	cctx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	go func() {
		defer close(consumed)
		for cctx.Err() == nil {
			for _, r := range consumer.Poll(cctx) {
				ledger.Observe(string(localkafka.Header(r, outbox.HeaderID)))
			}
		}
	}()

	rctx, stopRelays := context.WithCancel(ctx)
	defer stopRelays()
	var rwg sync.WaitGroup
	maxMessageBytes := 0 // the publishers' limit, for the outbox
	for i := 0; i < *relays; i++ {
		db, err := open()
		if err != nil {
			return err
		}
		defer db.Close()
		pub, err := kafka.New(kafka.Config{Brokers: broker.Addrs, ClientID: fmt.Sprintf("demo-relay-%d", i)})
		if err != nil {
			return err
		}
		defer pub.Close()
		maxMessageBytes = pub.MaxMessageBytes()
		relay, err := outbox.NewRelay(db, pub, outbox.RelayConfig{
			Dialect: dialect.SQLite(), ID: fmt.Sprintf("demo-relay-%d", i), Logger: log,
			LeaseDuration: 5 * time.Second,
		})
		if err != nil {
			return err
		}
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			_ = relay.Run(rctx)
		}()
	}

	ob, err := outbox.New(outbox.Config{Dialect: dialect.SQLite(), MaxMessageBytes: maxMessageBytes})
	if err != nil {
		return err
	}
	started := time.Now()
	var committed, rolledBack atomic.Int64
	var wwg sync.WaitGroup
	werrs := make(chan error, *writers)
	for w := 0; w < *writers; w++ {
		share := *n / *writers
		if w < *n%*writers {
			share++
		}
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			if err := demoWriter(ctx, appDB, ob, ledger, w, *writers, *keys, share, *rollbackPct, &committed, &rolledBack); err != nil {
				werrs <- err
			}
		}()
	}
	writersDone := make(chan struct{})
	go func() { wwg.Wait(); close(writersDone) }()

	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var lastPublished time.Time
	done := false
	for !done {
		select {
		case <-ctx.Done():
			done = true
		case err := <-werrs:
			cancel()
			return fmt.Errorf("writer: %w", err)
		case <-tick.C:
		}
		c, p := committed.Load(), int64(ledger.Published())
		if p > 0 {
			lastPublished = time.Now()
		}
		progress.update(c+rolledBack.Load(), c, p, time.Since(started))
		select {
		case <-writersDone:
			if p >= c {
				done = true
			}
		default:
		}
	}
	progress.finish()
	stopRelays()
	rwg.Wait()
	stopConsumer()
	<-consumed

	s := ledger.Summary()
	elapsed := lastPublished.Sub(started).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(s.Published) / elapsed
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
