package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/outboxrelay/outbox/dialect/pqnotify"
	"github.com/outboxrelay/outbox/internal/ctxtime"
)

// listenRetryMax is the longest pause between attempts to set up LISTEN.
const listenRetryMax = 30 * time.Second

// listenForCommits wakes the relay at commit (PostgreSQL LISTEN/NOTIFY)
// instead of at its next poll. The listener needs the outbox tables: when
// they are not there yet (the relay started before relay migrate) or the
// database does not answer, it tries again in the background with a
// growing pause, and the relay polls meanwhile. The returned channel is
// the relay's Wake; stop ends the attempts and closes the listener.
func listenForCommits(ctx context.Context, dsn string, log *slog.Logger) (wake <-chan struct{}, stop func()) {
	out := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		l := connectListener(ctx, dsn, log)
		if l == nil {
			return
		}
		defer l.Close()
		for {
			select {
			case <-l.Wake():
				select {
				case out <- struct{}{}:
				default:
				}
			case <-ctx.Done():
				return
			}
		}
	})
	return out, func() { cancel(); wg.Wait() }
}

// connectListener retries pqnotify.New until it works or ctx ends (nil):
// one line at the first failure, one when it works after failures.
func connectListener(ctx context.Context, dsn string, log *slog.Logger) *pqnotify.Listener {
	wait := time.Second
	for failed := false; ; failed = true {
		l, err := pqnotify.New(ctx, dsn, log)
		if err == nil {
			if failed {
				log.Info("LISTEN/NOTIFY set up: the relay wakes at commit again")
			}
			return l
		}
		if ctx.Err() != nil {
			return nil
		}
		if !failed {
			log.Warn("LISTEN/NOTIFY unavailable; polling until it can be set up (retrying in the background)", "err", err)
		}
		if !ctxtime.Sleep(ctx, wait) {
			return nil
		}
		wait = min(2*wait, listenRetryMax)
	}
}
