package dialect

import (
	"context"
	"database/sql"
	"slices"
)

const rowColumns = "m.id, m.message_id, m.topic, m.msg_key, m.payload, m.headers, m.shard, m.attempts, m.created_at, m.key_hash"

// maxInlineWaiting is the most keys waiting for a retry that ReadBatch
// leaves out with literal conditions; above it, a correlated sub-query
// (one index probe per row read) does the job.
const maxInlineWaiting = 64

// maxExcludeRuns is the most runs of consecutive ids that ReadBatch leaves
// out as ranges; more, and it lists the ids.
const maxExcludeRuns = 64

// waitingKey is a key whose earliest waiting row is minID: its rows after
// minID wait too.
type waitingKey struct {
	shard   int
	keyHash int64
	minID   int64
}

// ReadBatch reads with statements of literal integers only (no bound
// parameters, so each is a single round trip on every driver): the keys of
// these shards that wait for a retry (usually none, served by the retry
// index), then the batch in id order without them, then the waiting keys
// again. The statements do not share a snapshot: a key seen waiting that
// stops waiting in between is held back once more (safe), and a key that
// starts waiting in between (the previous owner of a shard recording its
// last outcome) is caught by the second look.
func (d *sqlDialect) ReadBatch(ctx context.Context, db *sql.DB, req ReadRequest) ([]Row, error) {
	if len(req.Shards) == 0 || req.Limit <= 0 {
		return nil, nil
	}
	shards := make([]int64, len(req.Shards))
	for i, s := range req.Shards {
		shards[i] = int64(s)
	}
	waits, err := d.waitingKeys(ctx, db, shards, true)
	if err != nil {
		return nil, err
	}
	rows, err := d.query(ctx, db, d.readSQL(shards, req, waits))
	if err != nil {
		return nil, err
	}
	out, err := d.scanRows(rows, req)
	if err != nil {
		return nil, err
	}
	if len(waits) > maxInlineWaiting || len(out) == 0 {
		return out, nil // the correlated sub-query held back within the read's own snapshot
	}
	// The waiting keys and the batch were read in two statements. A relay
	// that owned a shard until just now may have made a key wait in
	// between (its outcome is recorded after it lost the lease); ask again
	// and leave out the later rows of keys that wait now.
	again, err := d.waitingKeys(ctx, db, shards, false)
	if err != nil {
		return nil, err
	}
	return dropWaiting(out, again), nil
}

// readSQL reads the next rows of shards in id order: available, not
// excluded, not held back by a waiting key (listed in waits, or looked up
// per row when there are more than maxInlineWaiting).
func (d *sqlDialect) readSQL(shards []int64, req ReadRequest, waits []waitingKey) string {
	s := d.newStmt(false, 512+21*len(req.Exclude)+64*len(waits))
	s.WriteString("SELECT " + rowColumns)
	if d.f.nullFlags {
		s.WriteString(", m.msg_key IS NULL, m.payload IS NULL")
	}
	s.WriteString(" FROM " + TableMessages + " m")
	if d.f.readOnPrimary {
		s.WriteString(" FORCE INDEX (PRIMARY)")
	}
	s.WriteString(" WHERE ")
	if d.f.shardNoIndex {
		s.WriteByte('+')
	}
	s.WriteString("m.shard IN (")
	s.ints(shards)
	s.WriteString(") AND m.available_at <= ")
	s.now()
	if req.After > 0 {
		s.WriteString(" AND m.id > ")
		s.int(req.After)
	}
	s.exclude(req.Exclude)
	switch {
	case len(waits) == 0:
	case len(waits) <= maxInlineWaiting:
		s.WriteString(" AND (m.key_hash IS NULL OR NOT (")
		for i, w := range waits {
			if i > 0 {
				s.WriteString(" OR ")
			}
			s.WriteString("(m.shard = ")
			s.int(int64(w.shard))
			s.WriteString(" AND m.key_hash = ")
			s.int(w.keyHash)
			s.WriteString(" AND m.id > ")
			s.int(w.minID)
			s.WriteByte(')')
		}
		s.WriteString("))")
	default:
		s.WriteString(" AND (m.key_hash IS NULL OR NOT EXISTS (SELECT 1 FROM " + TableMessages + " w" +
			" WHERE w.shard = m.shard AND w.key_hash = m.key_hash AND w.attempts > 0 AND w.id < m.id" +
			" AND w.available_at > ")
		s.now()
		s.WriteString("))")
	}
	s.WriteString(" ORDER BY m.id LIMIT ")
	s.int(int64(req.Limit))
	return s.String()
}

// scanRows reads the batch, stopping after the row that brings it to
// req.MaxBytes, and closes rows.
func (d *sqlDialect) scanRows(rows *sql.Rows, req ReadRequest) ([]Row, error) {
	defer rows.Close()
	out := make([]Row, 0, min(req.Limit, 1024))
	size := 0
	for rows.Next() {
		var r Row
		var created dbTime
		var keyHash sql.NullInt64
		dest := []any{&r.RowID, &r.MessageID, &r.Topic, &r.Key, &r.Value, &r.Headers, &r.Shard, &r.Attempts, &created, &keyHash}
		var keyNull, valueNull bool
		if d.f.nullFlags {
			dest = append(dest, &keyNull, &valueNull)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if d.f.nullFlags {
			if r.Key == nil && !keyNull {
				r.Key = []byte{}
			}
			if r.Value == nil && !valueNull {
				r.Value = []byte{}
			}
		}
		r.CreatedAt = created.t
		r.KeyHash = keyHash.Int64
		out = append(out, r)
		size += len(r.Key) + len(r.Value) + len(r.Headers)
		if req.MaxBytes > 0 && size >= req.MaxBytes {
			break // closing rows discards the rest unread
		}
	}
	return out, rows.Err()
}

// dropWaiting removes from recs (in id order) the rows that a waiting key
// holds back.
func dropWaiting(recs []Row, waits []waitingKey) []Row {
	if len(waits) == 0 {
		return recs
	}
	type sk struct {
		shard   int
		keyHash int64
	}
	first := make(map[sk]int64, len(waits))
	for _, w := range waits {
		first[sk{w.shard, w.keyHash}] = w.minID
	}
	kept := recs[:0]
	for _, r := range recs {
		if id, ok := first[sk{r.Shard, r.KeyHash}]; ok && r.Key != nil && r.RowID > id {
			continue
		}
		kept = append(kept, r)
	}
	return kept
}

// exclude writes the condition that leaves out ids. The ids of a batch are
// mostly runs of consecutive integers: a run becomes a NOT BETWEEN, which
// every planner evaluates for almost nothing, where a literal NOT IN list of
// 2,000 ids made a PostgreSQL read take 8 ms instead of 3. Only ids of the
// set are left out: a run never spans an id outside it (a row that committed
// late, between two reads, must be read).
func (s *stmt) exclude(ids []int64) {
	if len(ids) == 0 {
		return
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	type run struct{ lo, hi int64 }
	var runs []run
	for _, id := range sorted {
		if n := len(runs); n > 0 && runs[n-1].hi+1 == id {
			runs[n-1].hi = id
			continue
		}
		runs = append(runs, run{id, id})
		if len(runs) > maxExcludeRuns {
			s.WriteString(" AND m.id NOT IN (")
			s.ints(sorted)
			s.WriteByte(')')
			return
		}
	}
	for _, r := range runs {
		s.WriteString(" AND m.id NOT BETWEEN ")
		s.int(r.lo)
		s.WriteString(" AND ")
		s.int(r.hi)
	}
}

// waitingKeys returns the keys of shards whose rows wait for a retry, with
// their earliest waiting id: at most maxInlineWaiting+1 of them when
// limited, else all.
func (d *sqlDialect) waitingKeys(ctx context.Context, db *sql.DB, shards []int64, limited bool) ([]waitingKey, error) {
	rows, err := d.query(ctx, db, d.waitingSQL(shards, limited))
	if err != nil {
		return nil, err
	}
	return scanAll(rows, func(rows *sql.Rows, w *waitingKey) error {
		return rows.Scan(&w.shard, &w.keyHash, &w.minID)
	})
}

func (d *sqlDialect) waitingSQL(shards []int64, limited bool) string {
	s := d.newStmt(false, 256+6*len(shards))
	s.WriteString("SELECT shard, key_hash, MIN(id) FROM " + TableMessages + " WHERE attempts > 0 AND available_at > ")
	s.now()
	s.WriteString(" AND key_hash IS NOT NULL AND shard IN (")
	s.ints(shards)
	s.WriteString(") GROUP BY shard, key_hash")
	if limited {
		s.WriteString(" LIMIT ")
		s.int(maxInlineWaiting + 1)
	}
	return s.String()
}
