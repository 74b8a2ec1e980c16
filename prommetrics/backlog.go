package prommetrics

import (
	"context"
	"database/sql"
	"log/slog"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

// DefaultRefreshInterval is the default interval of RefreshBacklog.
const DefaultRefreshInterval = 15 * time.Second

// RefreshOnce reads the backlog gauges (outbox_pending_messages,
// outbox_oldest_pending_age_seconds, outbox_dead_letters) with one bounded
// query (dialect.ReadBacklog: at most limit rows counted per table, the
// first 10000 due rows by id looked at for the oldest; limit <= 0 means
// dialect.DefaultBacklogLimit). The gauges cover the whole outbox, not only
// this relay's shards: every relay of an outbox reports the same numbers.
func (m *Metrics) RefreshOnce(ctx context.Context, d dialect.Dialect, db *sql.DB, limit int) error {
	b, err := dialect.ReadBacklog(ctx, d, db, limit)
	if err != nil {
		m.refreshErrs.Inc()
		return err
	}
	m.pending.Set(float64(b.Pending))
	capped := 0.0
	if b.PendingCapped {
		capped = 1
	}
	m.pendingCapped.Set(capped)
	m.oldest.Set(b.OldestDueAge.Seconds())
	m.deadLetters.Set(float64(b.DeadLetters))
	return nil
}

// RefreshBacklog calls RefreshOnce every interval (DefaultRefreshInterval
// when interval <= 0), each bounded by the interval, until ctx ends. A
// failed refresh is logged at debug level on log (if not nil) and counted in
// outbox_backlog_refresh_errors_total; the gauges keep their last values.
func (m *Metrics) RefreshBacklog(ctx context.Context, d dialect.Dialect, db *sql.DB, interval time.Duration, log *slog.Logger) {
	if interval <= 0 {
		interval = DefaultRefreshInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, interval)
		err := m.RefreshOnce(rctx, d, db, 0)
		cancel()
		if err != nil && ctx.Err() == nil && log != nil {
			log.Debug("refreshing the backlog gauges failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
