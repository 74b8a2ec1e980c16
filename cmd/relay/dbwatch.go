package main

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"time"

	"github.com/outboxrelay/outbox/internal/ctxtime"
)

// Outage log pacing: while the database is away the relay says so once,
// again after outageFirstRepeat, then at doubling intervals, and once when
// it is back.
const (
	outageFirstRepeat = 15 * time.Second
	outageProbeMax    = 2 * time.Second // longest pause between pings while it is away
	outagePingTimeout = 2 * time.Second
	outageCheckWait   = 500 * time.Millisecond // how long a failing log line waits for the verdict
	healthyFor        = time.Second            // a ping that answered vouches for the database this long
)

// dbWatch turns the relay's failure lines during a database outage into
// three kinds of line: "database unreachable" once, "database still
// unreachable" at a growing interval, and "database is back" with how long
// it was gone. A warning or error that carries an err attribute makes it
// ping the database on a connection of its own (the relay's pool may be
// busy); while the ping fails such lines are counted instead of written.
// Other lines always pass.
type dbWatch struct {
	probe   *sql.DB
	display string
	log     *slog.Logger // where the watch writes its own lines
	ctx     context.Context
	wg      sync.WaitGroup

	mu         sync.Mutex
	down       bool
	since      time.Time     // when the outage began
	healthy    time.Time     // when the database last answered
	checking   chan struct{} // closed when the check in progress ends; nil when none
	suppressed int           // lines not written during this outage
}

// watchDatabase starts watching d for log; it returns the logger to give
// the relay (and the listener) and a function that stops the watch. On
// SQLite, a file, it returns log unchanged.
func watchDatabase(ctx context.Context, d database, log *slog.Logger) (*slog.Logger, func()) {
	if d.driver == "sqlite" {
		return log, func() {}
	}
	probe, err := sql.Open(d.driver, d.dsn)
	if err != nil {
		return log, func() {}
	}
	probe.SetMaxOpenConns(1)
	ctx, cancel := context.WithCancel(ctx)
	w := &dbWatch{probe: probe, display: d.display, log: log, ctx: ctx}
	return slog.New(&outageHandler{Handler: log.Handler(), w: w}), func() {
		cancel()
		w.wg.Wait()
		_ = probe.Close()
	}
}

// admit reports whether a failure line should be written: not while the
// database is known to be away. It waits up to outageCheckWait for a
// verdict when the database has not answered in the last healthyFor.
func (w *dbWatch) admit() bool {
	w.mu.Lock()
	if w.down {
		w.suppressed++
		w.mu.Unlock()
		return false
	}
	if time.Since(w.healthy) < healthyFor || w.ctx.Err() != nil {
		w.mu.Unlock()
		return true
	}
	if w.checking == nil {
		w.checking = make(chan struct{})
		done := w.checking
		w.wg.Go(func() { w.check(done) })
	}
	done := w.checking
	w.mu.Unlock()
	select {
	case <-done:
	case <-time.After(outageCheckWait):
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.down {
		w.suppressed++
		return false
	}
	return true
}

// check pings once; on failure the outage begins.
func (w *dbWatch) check(done chan struct{}) {
	err := w.ping()
	w.mu.Lock()
	w.checking = nil
	if err == nil {
		w.healthy = time.Now()
	} else if w.ctx.Err() == nil {
		w.down, w.since, w.suppressed = true, time.Now(), 0
	}
	down := w.down
	w.mu.Unlock()
	close(done)
	if down {
		w.log.Error("database unreachable: the relay waits for it; this line repeats less and less often",
			"database", w.display, "err", err)
		w.whileDown()
	}
}

// whileDown pings until the database answers, repeating the outage line
// at a doubling interval, then says it is back.
func (w *dbWatch) whileDown() {
	every := outageFirstRepeat
	next := time.Now().Add(every)
	pause := 250 * time.Millisecond
	for {
		if !ctxtime.Sleep(w.ctx, pause) {
			return
		}
		pause = min(2*pause, outageProbeMax)
		err := w.ping()
		w.mu.Lock()
		gone := time.Since(w.since).Round(100 * time.Millisecond)
		if err == nil {
			n := w.suppressed
			w.down, w.healthy, w.suppressed = false, time.Now(), 0
			w.mu.Unlock()
			w.log.Info("database is back", "database", w.display, "down_for", gone, "lines_not_logged", n)
			return
		}
		w.mu.Unlock()
		if time.Now().After(next) {
			w.log.Error("database still unreachable", "database", w.display, "down_for", gone, "err", err)
			every *= 2
			next = time.Now().Add(every)
		}
	}
}

func (w *dbWatch) ping() error {
	ctx, cancel := context.WithTimeout(w.ctx, outagePingTimeout)
	defer cancel()
	return w.probe.PingContext(ctx)
}

// outageHandler passes a warning or error with an err attribute only when
// the dbWatch admits it; every other record passes.
type outageHandler struct {
	slog.Handler
	w *dbWatch
}

// Handle writes r unless it is a failure line during a database outage.
func (h *outageHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn && hasErr(r) && !h.w.admit() {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the watch on the derived handler.
func (h *outageHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &outageHandler{Handler: h.Handler.WithAttrs(as), w: h.w}
}

// WithGroup keeps the watch on the derived handler.
func (h *outageHandler) WithGroup(name string) slog.Handler {
	return &outageHandler{Handler: h.Handler.WithGroup(name), w: h.w}
}

func hasErr(r slog.Record) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == "err"
		return !found
	})
	return found
}
