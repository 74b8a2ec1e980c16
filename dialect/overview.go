package dialect

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	sq "github.com/Masterminds/squirrel"
)

// The operators' view of the outbox (relay stats). Every statement is a
// plain read: no row locks, nothing a relay waits for. On a large outbox
// (more than OverviewRequest.ExactUpTo rows) the counts per topic and per
// shard are estimated from a sample of primary-key ranges, so the cost does
// not grow with the table; the oldest message of each shard is exact (one
// probe of the (shard, id) index per shard). The messages waiting for a
// retry and the dead letters are read up to OverviewRequest.Cap rows. Each
// step has its own timeout; a step that fails is named in Overview.Failed
// and the others still answer.

// Overview is the state of the outbox for an operator.
type Overview struct {
	Now       time.Time // the database clock when it was read
	Estimated bool      // Pending and the per-topic and per-shard counts are estimates
	Pending   int64
	Oldest    time.Time // created_at of the first message in line; zero when empty
	Topics    []TopicPending
	Retrying  int64        // messages that failed at least once and wait for another attempt
	Waiting   []WaitingRow // a sample of them, next attempt first (see SampledFrom)
	Errors    []ErrorCount // their most frequent last errors
	// RetryingCapped: more than Cap messages wait for a retry; Retrying
	// is Cap.
	RetryingCapped bool
	// SampledFrom is how many of the messages waiting Waiting and Errors
	// were taken from: all of them when it equals Retrying and
	// RetryingCapped is false; else SampleFrom of them, taken in no
	// particular order (the index that finds them is not in next-attempt
	// order), so that Waiting is the next due of those, not of all.
	SampledFrom int64
	DeadLetters int64 // the dead letters, at most Cap (DeadCapped)
	// DeadCapped: more than Cap dead letters; Dead counts the newest Cap.
	DeadCapped bool
	Dead       []TopicDead
	Shards     []ShardState
	Relays     []RelayState
	// Failed are the steps that failed (or timed out), in order; their
	// figures above are all zero (nil), even those read before the step
	// failed.
	Failed []StepError

	shardPending map[int]int64 // pending per shard, while Overview runs
}

// TopicPending is the pending messages of one topic.
type TopicPending struct {
	Topic   string
	Pending int64
	// Oldest is the oldest created_at seen: exact when the overview is not
	// estimated; otherwise the oldest of the sample (which starts at the
	// first message in line).
	Oldest time.Time
}

// WaitingRow is a message waiting for a retry.
type WaitingRow struct {
	RowID       int64
	MessageID   string
	Topic       string
	Shard       int
	Attempts    int
	NextAttempt time.Time
	LastError   string
}

// ErrorCount is a last error and how many waiting messages have it.
type ErrorCount struct {
	Err   string
	Count int64
}

// TopicDead is the dead letters of one topic.
type TopicDead struct {
	Topic  string
	Count  int64
	Newest time.Time // dead_at of the newest
}

// ShardState is one shard: its lease and its pending messages.
type ShardState struct {
	Shard      int
	Owner      string // empty when free
	LeaseUntil time.Time
	Pending    int64     // estimated when Overview.Estimated
	Oldest     time.Time // exact; zero when the shard has nothing pending
}

// RelayState is a relay that sent a heartbeat.
type RelayState struct {
	ID          string
	HeartbeatAt time.Time
}

// StepError is a step of Overview that failed, and why.
type StepError struct {
	Step string // "pending", "retries", "dead letters", "shards" or "relays"
	Err  error
}

// OverviewRequest says how much Overview reads.
type OverviewRequest struct {
	// Waiting is how many waiting messages to list. Default 10.
	Waiting int
	// ExactUpTo is the largest outbox counted exactly; above it the counts
	// are estimated from a sample. Default 100,000.
	ExactUpTo int
	// Cap is the most rows read to count the messages waiting for a retry
	// and the dead letters, to sample and group them. Default 10,000.
	Cap int
	// StepTimeout bounds each step. Default 5s.
	StepTimeout time.Duration
	// SampleFrom is the most rows read (whole, by primary key: a random
	// page each on a large outbox) to sample the messages waiting for a
	// retry and group their errors; at most Cap. Default 1,000.
	SampleFrom int
}

// Defaults of OverviewRequest.
const (
	DefaultOverviewWaiting     = 10
	DefaultOverviewExactUpTo   = 100_000
	DefaultOverviewCap         = 10_000
	DefaultOverviewStepTimeout = 5 * time.Second
	DefaultOverviewSampleFrom  = 1_000
)

// Sampling of a large outbox: sampleRanges ranges of sampleWidth ids,
// spread evenly over the ids in the table, the first at the lowest id.
const (
	sampleRanges = 100
	sampleWidth  = 1000
)

func (d *sqlDialect) Overview(ctx context.Context, db *sql.DB, req OverviewRequest) (Overview, error) {
	req = req.withDefaults()
	var o Overview
	if err := d.overviewClock(ctx, db, &o, req); err != nil {
		return Overview{}, err
	}
	steps := []struct {
		name string
		run  func(context.Context, *sql.DB, *Overview, OverviewRequest) error
	}{
		{"pending", d.overviewPending}, {"retries", d.overviewWaiting}, {"dead letters", d.overviewDead},
		{"shards", d.overviewShards}, {"relays", d.overviewRelays},
	}
	for _, step := range steps {
		// Each step writes to a copy, kept only if the step succeeded: one
		// that fails half-way (a count read, then an error) leaves no
		// figure of its own behind.
		sctx, cancel := context.WithTimeout(ctx, req.StepTimeout)
		part := o
		err := step.run(sctx, db, &part, req)
		cancel()
		if ctx.Err() != nil {
			return Overview{}, ctx.Err()
		}
		if err != nil {
			o.Failed = append(o.Failed, StepError{Step: step.name, Err: err})
			continue
		}
		o = part
	}
	o.shardPending = nil
	return o, nil
}

func (req OverviewRequest) withDefaults() OverviewRequest {
	if req.Waiting <= 0 {
		req.Waiting = DefaultOverviewWaiting
	}
	if req.ExactUpTo <= 0 {
		req.ExactUpTo = DefaultOverviewExactUpTo
	}
	if req.Cap <= 0 {
		req.Cap = DefaultOverviewCap
	}
	if req.StepTimeout <= 0 {
		req.StepTimeout = DefaultOverviewStepTimeout
	}
	if req.SampleFrom <= 0 {
		req.SampleFrom = DefaultOverviewSampleFrom
	}
	req.SampleFrom = min(req.SampleFrom, req.Cap)
	return req
}

// one runs a query of one row.
func (d *sqlDialect) one(ctx context.Context, db *sql.DB, s sq.Sqlizer, dest ...any) error {
	q, args, err := s.ToSql()
	if err != nil {
		return err
	}
	return db.QueryRowContext(ctx, d.bounded(ctx, q), args...).Scan(dest...)
}

func (d *sqlDialect) overviewClock(ctx context.Context, db *sql.DB, o *Overview, _ OverviewRequest) error {
	var now dbTime
	if err := d.one(ctx, db, d.clockSQL(), &now); err != nil {
		return fmt.Errorf("reading the database clock: %w", err)
	}
	o.Now = now.t
	return nil
}

func (d *sqlDialect) clockSQL() sq.Sqlizer { return sq.Expr("SELECT " + d.f.now) }

// overviewPending counts the outbox per topic and shard: exactly when it
// holds at most req.ExactUpTo rows (a bounded count tells), else from a
// sample of primary-key ranges.
func (d *sqlDialect) overviewPending(ctx context.Context, db *sql.DB, o *Overview, req OverviewRequest) error {
	var first dbTime
	err := d.one(ctx, db, d.firstInLineSQL(), &first)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	o.Oldest = first.t
	var n int64
	if err := d.one(ctx, db, d.boundedCountSQL(req.ExactUpTo+1), &n); err != nil {
		return err
	}
	if n <= int64(req.ExactUpTo) {
		return d.overviewCells(ctx, db, o, nil, 1)
	}
	var lo, hi int64
	if err := d.one(ctx, db, d.idSpanSQL(), &lo, &hi); err != nil {
		return err
	}
	starts, covered := sampleRangesOf(lo, hi)
	o.Estimated = true
	return d.overviewCells(ctx, db, o, starts, float64(hi-lo+1)/float64(covered))
}

func (d *sqlDialect) firstInLineSQL() sq.Sqlizer {
	return d.sb.Select("created_at").From(TableMessages).OrderBy("id").Limit(1)
}

// boundedCountSQL counts the outbox's rows, reading at most limit.
func (d *sqlDialect) boundedCountSQL(limit int) sq.Sqlizer {
	inner := sq.Select("1").From(TableMessages).Limit(uint64(limit))
	return d.sb.Select("COUNT(*)").FromSelect(inner, "b")
}

func (d *sqlDialect) idSpanSQL() sq.Sqlizer {
	return d.sb.Select("MIN(id)", "MAX(id)").From(TableMessages)
}

// overviewCells counts the rows per topic and shard, in the id ranges of
// starts (all rows when starts is nil), and scales the counts by scale.
func (d *sqlDialect) overviewCells(ctx context.Context, db *sql.DB, o *Overview, starts []int64, scale float64) error {
	type cell struct {
		topic  string
		shard  int
		n      int64
		oldest dbTime
	}
	cells, err := querySq(ctx, d, db, d.cellsSQL(starts), func(rows *sql.Rows, c *cell) error {
		return rows.Scan(&c.topic, &c.shard, &c.n, &c.oldest)
	})
	if err != nil {
		return err
	}
	topics := map[string]int{} // topic -> index in o.Topics
	o.shardPending = map[int]int64{}
	for _, c := range cells {
		est := int64(float64(c.n)*scale + 0.5)
		o.Pending += est
		o.shardPending[c.shard] += est
		i, ok := topics[c.topic]
		if !ok {
			i = len(o.Topics)
			topics[c.topic] = i
			o.Topics = append(o.Topics, TopicPending{Topic: c.topic, Oldest: c.oldest.t})
		}
		t := &o.Topics[i]
		t.Pending += est
		if c.oldest.t.Before(t.Oldest) {
			t.Oldest = c.oldest.t
		}
	}
	slices.SortFunc(o.Topics, func(a, b TopicPending) int { return strings.Compare(a.Topic, b.Topic) })
	return nil
}

// sampleRangesOf returns the starts of the sample's id ranges over
// [lo, hi], the first at lo, and how many ids of [lo, hi] they cover.
func sampleRangesOf(lo, hi int64) (starts []int64, covered int64) {
	step := max((hi-lo+1)/sampleRanges, sampleWidth)
	for s := lo; s <= hi && len(starts) < sampleRanges; s += step {
		starts = append(starts, s)
		covered += min(s+sampleWidth, hi+1) - s
	}
	return starts, covered
}

// cellsSQL counts the rows per topic and shard, in the id ranges of starts
// (sampleWidth ids each), or all rows when starts is nil. The ranges are a
// UNION ALL of primary-key range scans, their bounds integer literals: one
// WHERE of 100 ORed ranges made PostgreSQL's estimate cross
// jit_above_cost, and compiling it took longer than the query.
func (d *sqlDialect) cellsSQL(starts []int64) sq.Sqlizer {
	const cells = "SELECT topic, shard, COUNT(*), MIN(created_at) FROM "
	if starts == nil {
		return sq.Expr(cells + TableMessages + " GROUP BY topic, shard")
	}
	s := d.newStmt(false, 64+100*len(starts))
	s.WriteString(cells + "(")
	for i, start := range starts {
		if i > 0 {
			s.WriteString(" UNION ALL ")
		}
		s.WriteString("SELECT topic, shard, created_at FROM " + TableMessages + " WHERE id >= ")
		s.int(start)
		s.WriteString(" AND id < ")
		s.int(start + sampleWidth)
	}
	s.WriteString(") AS sample GROUP BY topic, shard")
	return sq.Expr(s.String())
}

// overviewWaiting counts, samples and groups by error the messages waiting
// for a retry: rows with attempts > 0, reached through the partial index
// outbox_messages_waiting (PostgreSQL, SQLite) or outbox_messages_retrying
// (MySQL), never by a scan of the outbox, and at most req.Cap of them.
func (d *sqlDialect) overviewWaiting(ctx context.Context, db *sql.DB, o *Overview, req OverviewRequest) error {
	if err := d.one(ctx, db, d.waitingCountSQL(req.Cap+1), &o.Retrying); err != nil {
		return err
	}
	if o.Retrying > int64(req.Cap) {
		o.Retrying, o.RetryingCapped = int64(req.Cap), true
	}
	if o.Retrying == 0 {
		return nil
	}
	o.SampledFrom = min(o.Retrying, int64(req.SampleFrom))
	var err error
	o.Waiting, err = querySq(ctx, d, db, d.waitingSampleSQL(req.Waiting, req.SampleFrom), func(rows *sql.Rows, w *WaitingRow) error {
		var next dbTime
		var lastErr sql.NullString
		err := rows.Scan(&w.RowID, &w.MessageID, &w.Topic, &w.Shard, &w.Attempts, &next, &lastErr)
		w.NextAttempt, w.LastError = next.t, lastErr.String
		return err
	})
	if err != nil {
		return err
	}
	o.Errors, err = querySq(ctx, d, db, d.waitingErrorsSQL(5, req.SampleFrom), func(rows *sql.Rows, e *ErrorCount) error {
		var s sql.NullString
		err := rows.Scan(&s, &e.Count)
		e.Err = s.String
		return err
	})
	return err
}

// waiting is at most limit of the messages waiting for a retry, with
// columns.
func (d *sqlDialect) waiting(limit int, columns ...string) sq.SelectBuilder {
	return sq.Select(columns...).From(TableMessages).Where("attempts > 0").Limit(uint64(limit))
}

func (d *sqlDialect) waitingCountSQL(limit int) sq.Sqlizer {
	return d.sb.Select("COUNT(*)").FromSelect(d.waiting(limit, "1"), "w")
}

func (d *sqlDialect) waitingSampleSQL(limit, most int) sq.Sqlizer {
	cols := []string{"id", "message_id", "topic", "shard", "attempts", "available_at", "last_error"}
	return d.sb.Select(cols...).FromSelect(d.waiting(most, cols...), "w").OrderBy("available_at", "id").Limit(uint64(limit))
}

func (d *sqlDialect) waitingErrorsSQL(limit, most int) sq.Sqlizer {
	return d.sb.Select("last_error", "COUNT(*)").FromSelect(d.waiting(most, "last_error"), "w").
		GroupBy("last_error").OrderBy("COUNT(*) DESC", "last_error").Limit(uint64(limit))
}

// overviewDead counts the dead letters, reading at most req.Cap + 1, and
// groups the newest req.Cap of them by topic (a walk of the primary key
// from the end): the table has no index on topic, and need not be small.
func (d *sqlDialect) overviewDead(ctx context.Context, db *sql.DB, o *Overview, req OverviewRequest) error {
	if err := d.one(ctx, db, d.deadCountSQL(req.Cap+1), &o.DeadLetters); err != nil {
		return err
	}
	if o.DeadLetters > int64(req.Cap) {
		o.DeadLetters, o.DeadCapped = int64(req.Cap), true
	}
	var err error
	o.Dead, err = querySq(ctx, d, db, d.deadPerTopicSQL(req.Cap), func(rows *sql.Rows, t *TopicDead) error {
		var newest dbTime
		err := rows.Scan(&t.Topic, &t.Count, &newest)
		t.Newest = newest.t
		return err
	})
	slices.SortFunc(o.Dead, func(a, b TopicDead) int { return strings.Compare(a.Topic, b.Topic) })
	return err
}

func (d *sqlDialect) deadCountSQL(limit int) sq.Sqlizer {
	return d.sb.Select("COUNT(*)").FromSelect(sq.Select("1").From(TableDeadLetters).Limit(uint64(limit)), "b")
}

func (d *sqlDialect) deadPerTopicSQL(most int) sq.Sqlizer {
	newest := sq.Select("topic", "dead_at").From(TableDeadLetters).OrderBy("id DESC").Limit(uint64(most))
	return d.sb.Select("topic", "COUNT(*)", "MAX(dead_at)").FromSelect(newest, "dl").GroupBy("topic").OrderBy("topic")
}

// overviewShards reads the shards' leases and, per shard, the created_at
// of its first message in line: one probe of the (shard, id) index each.
func (d *sqlDialect) overviewShards(ctx context.Context, db *sql.DB, o *Overview, _ OverviewRequest) error {
	var err error
	o.Shards, err = querySq(ctx, d, db, d.shardsSQL(), func(rows *sql.Rows, s *ShardState) error {
		var owner sql.NullString
		var until, oldest dbTime
		err := rows.Scan(&s.Shard, &owner, &until, &oldest)
		s.Owner, s.LeaseUntil, s.Oldest = owner.String, until.t, oldest.t
		s.Pending = o.shardPending[s.Shard]
		return err
	})
	return err
}

func (d *sqlDialect) shardsSQL() sq.Sqlizer {
	from := TableMessages + " AS m"
	if d.f.forceShardIndex {
		from += " FORCE INDEX (outbox_messages_shard_id)"
	}
	first := "(SELECT m.created_at FROM " + from + " WHERE m.shard = s.shard ORDER BY m.id LIMIT 1)"
	return d.sb.Select("s.shard", "s.owner", "s.lease_until", first).From(TableShards + " AS s").OrderBy("s.shard")
}

func (d *sqlDialect) overviewRelays(ctx context.Context, db *sql.DB, o *Overview, _ OverviewRequest) error {
	var err error
	o.Relays, err = querySq(ctx, d, db, d.relaysSQL(), func(rows *sql.Rows, r *RelayState) error {
		var hb dbTime
		err := rows.Scan(&r.ID, &hb)
		r.HeartbeatAt = hb.t
		return err
	})
	return err
}

func (d *sqlDialect) relaysSQL() sq.Sqlizer {
	return d.sb.Select("relay_id", "heartbeat_at").From(TableRelays).OrderBy("relay_id")
}
