package dialect

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	sq "github.com/Masterminds/squirrel"
)

// flavor is what differs between the SQL dialects. Everything else is shared
// by sqlDialect, so the three dialects cannot drift apart.
type flavor struct {
	name Name
	// dollar selects $1-style placeholders (PostgreSQL) over ?.
	dollar bool
	// now is the database clock as the type stored in time columns.
	now string
	// plusMicros returns an expression adding a bound parameter (written as
	// ?) of microseconds to base.
	plusMicros func(base string) string
	// ageMicros is an expression for now minus MIN(created_at) in
	// microseconds (NULL on an empty table).
	ageMicros string
	// returning: UPDATE ... RETURNING is available (PostgreSQL, SQLite).
	returning bool
	// skipLocked is the row-locking clause for claiming free shards.
	skipLocked string
	// forUpdate is the locking clause that serializes dead-lettering of the
	// same row by two relays; empty where writes are serialized anyway.
	forUpdate string
	// insertIgnore and onConflictIgnore make an INSERT skip existing keys.
	insertIgnore     string
	onConflictIgnore string
	// upsertHeartbeat is the suffix that turns the relay insert into an upsert.
	upsertHeartbeat string
	// readCommitted runs claims in READ COMMITTED so that locking reads do
	// not keep locks on rows they skipped (InnoDB).
	readCommitted bool
	notify        bool
	// bytesLiteral and textLiteral write a value as a SQL literal that
	// needs no escaping (hexadecimal). When set, Insert sends literals
	// instead of bound parameters.
	bytesLiteral func(b *strings.Builder, v []byte)
	textLiteral  func(b *strings.Builder, s string)
	// shardNoIndex keeps the planner off the (shard, id) index in ReadBatch
	// (SQLite would read every row of the shards and sort them, instead of
	// walking the primary key in order until the batch is full).
	shardNoIndex bool
	// nullFlags: the driver reads an empty BLOB as nil (modernc.org/sqlite),
	// so ReadBatch also selects IS NULL to tell a null key or value from an
	// empty one.
	nullFlags bool
}

type sqlDialect struct {
	f  flavor
	sb sq.StatementBuilderType
}

func newSQLDialect(f flavor) *sqlDialect {
	ph := sq.PlaceholderFormat(sq.Question)
	if f.dollar {
		ph = sq.Dollar
	}
	return &sqlDialect{f: f, sb: sq.StatementBuilder.PlaceholderFormat(ph)}
}

func (d *sqlDialect) Name() Name           { return d.f.name }
func (d *sqlDialect) SupportsNotify() bool { return d.f.notify }

// rebind turns ? placeholders into the dialect's own.
func (d *sqlDialect) rebind(query string) string {
	if !d.f.dollar {
		return query
	}
	out, err := sq.Dollar.ReplacePlaceholders(query)
	if err != nil { // cannot happen for the queries of this package
		panic(err)
	}
	return out
}

// placeholder writes the n-th (1-based) placeholder.
func (d *sqlDialect) placeholder(b *strings.Builder, n int) {
	if d.f.dollar {
		var num [20]byte
		b.WriteByte('$')
		b.Write(strconv.AppendInt(num[:0], int64(n), 10))
		return
	}
	b.WriteByte('?')
}

const insertColumns = "INSERT INTO " + TableMessages +
	" (message_id, topic, msg_key, key_hash, payload, headers, shard, created_at, available_at) VALUES "

func (d *sqlDialect) Insert(ctx context.Context, exec Execer, msgs []InsertRow) error {
	if len(msgs) == 0 {
		return nil
	}
	if d.f.bytesLiteral != nil && payloadBytes(msgs) <= maxLiteralBytes {
		_, err := exec.ExecContext(ctx, d.insertLiteral(msgs))
		return err
	}
	var b strings.Builder
	b.Grow(len(insertColumns) + len(msgs)*64)
	b.WriteString(insertColumns)
	args := make([]any, 0, len(msgs)*8)
	n := 0
	next := func() { n++; d.placeholder(&b, n) }
	for i := range msgs {
		m := &msgs[i]
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := 0; c < 7; c++ {
			if c > 0 {
				b.WriteByte(',')
			}
			next()
		}
		b.WriteByte(',')
		var key, keyHash, value, headers any
		if m.Key != nil {
			key, keyHash = m.Key, m.KeyHash
		}
		if m.Value != nil {
			value = m.Value
		}
		if m.Headers != nil {
			headers = m.Headers
		}
		args = append(args, m.MessageID, m.Topic, key, keyHash, value, headers, m.Shard)
		b.WriteString(d.f.now) // created_at
		b.WriteByte(',')
		if m.Delay > 0 {
			// plusMicros has exactly one ?, replaced by our own numbering.
			expr := d.f.plusMicros(d.f.now)
			q := strings.Index(expr, "?")
			b.WriteString(expr[:q])
			next()
			b.WriteString(expr[q+1:])
			args = append(args, m.Delay.Microseconds())
		} else {
			b.WriteString(d.f.now)
		}
		b.WriteByte(')')
	}
	_, err := exec.ExecContext(ctx, b.String(), args...)
	return err
}

// maxLiteralBytes is the most payload (keys, values, headers, ids) that
// Insert writes as literals. Hexadecimal doubles it on the wire, and the
// statement must stay well below MariaDB's default max_allowed_packet
// (16 MiB); above it, bound parameters (which drivers send as long data)
// carry the values, at the price of a prepare round trip that the
// transfer dwarfs anyway.
const maxLiteralBytes = 4 << 20

func payloadBytes(msgs []InsertRow) int {
	n := 0
	for i := range msgs {
		m := &msgs[i]
		n += len(m.MessageID) + len(m.Topic) + len(m.Key) + len(m.Value) + len(m.Headers)
	}
	return n
}

// insertLiteral writes the INSERT of msgs with every value as a literal.
// A statement without bound parameters is one round trip on every driver
// (lib/pq and go-sql-driver/mysql otherwise prepare it first: two), and
// cannot be injected: byte strings and text go in hexadecimal, numbers as
// decimal integers.
func (d *sqlDialect) insertLiteral(msgs []InsertRow) string {
	size := len(insertColumns)
	for i := range msgs {
		m := &msgs[i]
		size += 2*(len(m.MessageID)+len(m.Topic)+len(m.Key)+len(m.Value)+len(m.Headers)) + 2*len(d.f.now) + 200
	}
	var b strings.Builder
	b.Grow(size)
	b.WriteString(insertColumns)
	var num [20]byte
	bytesOrNull := func(v []byte) {
		if v == nil {
			b.WriteString("NULL")
			return
		}
		d.f.bytesLiteral(&b, v)
	}
	for i := range msgs {
		m := &msgs[i]
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		d.f.textLiteral(&b, m.MessageID)
		b.WriteByte(',')
		d.f.textLiteral(&b, m.Topic)
		b.WriteByte(',')
		bytesOrNull(m.Key)
		b.WriteByte(',')
		if m.Key != nil {
			b.Write(strconv.AppendInt(num[:0], m.KeyHash, 10))
		} else {
			b.WriteString("NULL")
		}
		b.WriteByte(',')
		bytesOrNull(m.Value)
		b.WriteByte(',')
		bytesOrNull(m.Headers)
		b.WriteByte(',')
		b.Write(strconv.AppendInt(num[:0], int64(m.Shard), 10))
		b.WriteByte(',')
		b.WriteString(d.f.now) // created_at
		b.WriteByte(',')
		if m.Delay > 0 {
			expr := d.f.plusMicros(d.f.now)
			q := strings.Index(expr, "?")
			b.WriteString(expr[:q])
			b.Write(strconv.AppendInt(num[:0], m.Delay.Microseconds(), 10))
			b.WriteString(expr[q+1:])
		} else {
			b.WriteString(d.f.now)
		}
		b.WriteByte(')')
	}
	return b.String()
}

// writeHex writes v in lowercase hexadecimal.
func writeHex(b *strings.Builder, v []byte) {
	const digits = "0123456789abcdef"
	for _, c := range v {
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&0x0f])
	}
}

func (d *sqlDialect) EnsureShards(ctx context.Context, db *sql.DB, n int) error {
	if n <= 0 {
		return fmt.Errorf("dialect: shard count must be positive, got %d", n)
	}
	var have int
	err := db.QueryRowContext(ctx, d.rebind("SELECT COUNT(*) FROM "+TableShards+" WHERE shard < ?"), n).Scan(&have)
	if err != nil {
		return err
	}
	if have == n {
		return nil
	}
	var b strings.Builder
	b.WriteString(d.f.insertIgnore + " INTO " + TableShards + " (shard, fence) VALUES ")
	args := make([]any, 0, n)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(")
		d.placeholder(&b, i+1)
		b.WriteString(", 0)")
		args = append(args, i)
	}
	b.WriteString(d.f.onConflictIgnore)
	// Two relays starting together may deadlock on InnoDB's duplicate-key
	// locks; the statement is idempotent, so try again.
	for attempt := 0; ; attempt++ {
		_, err = db.ExecContext(ctx, b.String(), args...)
		if err == nil || attempt == 4 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * 10 * time.Millisecond):
		}
	}
}

func (d *sqlDialect) Heartbeat(ctx context.Context, db *sql.DB, relayID string, ttl time.Duration) (int, error) {
	upsert := "INSERT INTO " + TableRelays + " (relay_id, heartbeat_at) VALUES (?, " + d.f.now + ")" + d.f.upsertHeartbeat
	if _, err := db.ExecContext(ctx, d.rebind(upsert), relayID); err != nil {
		return 0, err
	}
	prune := "DELETE FROM " + TableRelays + " WHERE heartbeat_at < " + d.f.plusMicros(d.f.now)
	if _, err := db.ExecContext(ctx, d.rebind(prune), -ttl.Microseconds()); err != nil {
		return 0, err
	}
	var live int
	err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+TableRelays).Scan(&live)
	return live, err
}

func (d *sqlDialect) Deregister(ctx context.Context, db *sql.DB, relayID string) error {
	_, err := db.ExecContext(ctx, d.rebind("DELETE FROM "+TableRelays+" WHERE relay_id = ?"), relayID)
	return err
}

// freeShards selects shards that nobody holds or whose lease expired.
func (d *sqlDialect) freeShards() string {
	return "SELECT shard FROM " + TableShards + " WHERE owner IS NULL OR lease_until < " + d.f.now +
		" ORDER BY shard LIMIT ?" + d.f.skipLocked
}

func (d *sqlDialect) Acquire(ctx context.Context, db *sql.DB, relayID string, max int, lease time.Duration) ([]Lease, error) {
	if max <= 0 {
		return nil, nil
	}
	set := "UPDATE " + TableShards + " SET owner = ?, lease_until = " + d.f.plusMicros(d.f.now) + ", fence = fence + 1"
	if d.f.returning {
		// One statement: the sub-select locks (PostgreSQL) or, in SQLite,
		// the single writer makes the whole statement a compare-and-set.
		q := set + " WHERE shard IN (" + d.freeShards() + ") RETURNING shard, fence"
		return queryLeases(ctx, db, d.rebind(q), relayID, lease.Microseconds(), max)
	}
	var out []Lease
	err := d.inTx(ctx, db, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, d.rebind(d.freeShards()), max)
		if err != nil {
			return err
		}
		shards, err := scanColumn[int](rows)
		if err != nil || len(shards) == 0 {
			return err
		}
		up, args, err := d.sb.Update(TableShards).
			Set("owner", relayID).
			Set("lease_until", sq.Expr(d.f.plusMicros(d.f.now), lease.Microseconds())).
			Set("fence", sq.Expr("fence + 1")).
			Where(sq.Eq{"shard": shards}).ToSql()
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, up, args...); err != nil {
			return err
		}
		sel, args, err := d.sb.Select("shard", "fence").From(TableShards).
			Where(sq.Eq{"shard": shards}).OrderBy("shard").ToSql()
		if err != nil {
			return err
		}
		out, err = queryLeases(ctx, tx, sel, args...)
		return err
	})
	return out, err
}

// heldBy matches the leases that relayID holds with the given fences.
func heldBy(relayID string, leases []Lease) sq.Sqlizer {
	or := make(sq.Or, 0, len(leases))
	for _, l := range leases {
		or = append(or, sq.Eq{"shard": l.Shard, "fence": l.Fence})
	}
	return sq.And{sq.Eq{"owner": relayID}, or}
}

func (d *sqlDialect) Renew(ctx context.Context, db *sql.DB, relayID string, leases []Lease, lease time.Duration) ([]Lease, error) {
	if len(leases) == 0 {
		return nil, nil
	}
	up := d.sb.Update(TableShards).
		Set("lease_until", sq.Expr(d.f.plusMicros(d.f.now), lease.Microseconds())).
		Where(heldBy(relayID, leases))
	if d.f.returning {
		q, args, err := up.Suffix("RETURNING shard, fence").ToSql()
		if err != nil {
			return nil, err
		}
		return queryLeases(ctx, db, q, args...)
	}
	var out []Lease
	err := d.inTx(ctx, db, func(tx *sql.Tx) error {
		q, args, err := up.ToSql()
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
		// Rows that matched are locked by the update until commit, and
		// nobody else can make a row match owner = relayID.
		sel, args, err := d.sb.Select("shard", "fence").From(TableShards).
			Where(heldBy(relayID, leases)).OrderBy("shard").ToSql()
		if err != nil {
			return err
		}
		out, err = queryLeases(ctx, tx, sel, args...)
		return err
	})
	return out, err
}

func (d *sqlDialect) Release(ctx context.Context, db *sql.DB, relayID string, leases []Lease) error {
	if len(leases) == 0 {
		return nil
	}
	q, args, err := d.sb.Update(TableShards).
		Set("owner", nil).Set("lease_until", nil).
		Where(heldBy(relayID, leases)).ToSql()
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, q, args...)
	return err
}

const recordColumns = "m.id, m.message_id, m.topic, m.msg_key, m.payload, m.headers, m.shard, m.attempts, m.created_at, m.key_hash"

// maxInlineWaiting is the most keys waiting for a retry that ReadBatch
// leaves out with literal conditions; above it, a correlated sub-query
// (one index probe per row read) does the job.
const maxInlineWaiting = 64

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
	var in strings.Builder
	writeList(&in, shards)
	waits, err := d.waitingKeys(ctx, db, in.String(), true)
	if err != nil {
		return nil, err
	}

	var b strings.Builder
	b.Grow(512 + 21*len(req.Exclude) + 64*len(waits))
	b.WriteString("SELECT " + recordColumns)
	if d.f.nullFlags {
		b.WriteString(", m.msg_key IS NULL, m.payload IS NULL")
	}
	b.WriteString(" FROM " + TableMessages + " m WHERE ")
	if d.f.shardNoIndex {
		b.WriteByte('+')
	}
	b.WriteString("m.shard IN (" + in.String() + ") AND m.available_at <= " + d.f.now)
	writeExclude(&b, req.Exclude)
	switch {
	case len(waits) == 0:
	case len(waits) <= maxInlineWaiting:
		b.WriteString(" AND (m.key_hash IS NULL OR NOT (")
		for i, w := range waits {
			if i > 0 {
				b.WriteString(" OR ")
			}
			fmt.Fprintf(&b, "(m.shard = %d AND m.key_hash = %d AND m.id > %d)", w.shard, w.keyHash, w.minID)
		}
		b.WriteString("))")
	default:
		b.WriteString(" AND (m.key_hash IS NULL OR NOT EXISTS (SELECT 1 FROM " + TableMessages + " w" +
			" WHERE w.shard = m.shard AND w.key_hash = m.key_hash AND w.attempts > 0 AND w.id < m.id" +
			" AND w.available_at > " + d.f.now + "))")
	}
	b.WriteString(" ORDER BY m.id LIMIT " + strconv.Itoa(req.Limit))

	rows, err := db.QueryContext(ctx, b.String())
	if err != nil {
		return nil, err
	}
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
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	if len(waits) > maxInlineWaiting || len(out) == 0 {
		return out, nil // the correlated sub-query held back within the read's own snapshot
	}
	// The waiting keys and the batch were read in two statements. A relay
	// that owned a shard until just now may have made a key wait in
	// between (its outcome is recorded after it lost the lease); ask again
	// and leave out the later rows of keys that wait now.
	again, err := d.waitingKeys(ctx, db, in.String(), false)
	if err != nil {
		return nil, err
	}
	return dropWaiting(out, again), nil
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

// maxExcludeRuns is the most runs of consecutive ids that ReadBatch leaves
// out as ranges; more, and it lists the ids.
const maxExcludeRuns = 64

// writeExclude writes the condition that leaves out ids. The ids of a batch
// are mostly runs of consecutive integers: a run becomes a NOT BETWEEN,
// which every planner evaluates for almost nothing, where a literal NOT IN
// list of 2,000 ids made a PostgreSQL read take 8 ms instead of 3. Only ids
// of the set are left out: a run never spans an id outside it (a row that
// committed late, between two reads, must be read).
func writeExclude(b *strings.Builder, ids []int64) {
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
			b.WriteString(" AND m.id NOT IN (")
			writeList(b, sorted)
			b.WriteByte(')')
			return
		}
	}
	var num [20]byte
	for _, r := range runs {
		b.WriteString(" AND m.id NOT BETWEEN ")
		b.Write(strconv.AppendInt(num[:0], r.lo, 10))
		b.WriteString(" AND ")
		b.Write(strconv.AppendInt(num[:0], r.hi, 10))
	}
}

// waitingKeys returns the keys of the shards (a literal list) whose rows
// wait for a retry, with their earliest waiting id: at most
// maxInlineWaiting+1 of them when limited, else all.
func (d *sqlDialect) waitingKeys(ctx context.Context, db *sql.DB, shards string, limited bool) ([]waitingKey, error) {
	q := "SELECT shard, key_hash, MIN(id) FROM " + TableMessages +
		" WHERE attempts > 0 AND available_at > " + d.f.now + " AND key_hash IS NOT NULL AND shard IN (" + shards + ")" +
		" GROUP BY shard, key_hash"
	if limited {
		q += " LIMIT " + strconv.Itoa(maxInlineWaiting+1)
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []waitingKey
	for rows.Next() {
		var w waitingKey
		if err := rows.Scan(&w.shard, &w.keyHash, &w.minID); err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// writeList writes comma-separated integers. Statements built with it have
// no bound parameters: they cost one round trip (no prepare) and no
// placeholder limit applies.
func writeList(b *strings.Builder, ids []int64) {
	var num [20]byte
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(strconv.AppendInt(num[:0], id, 10))
	}
}

// maxIDsPerStatement keeps IN lists well below every database's limit on
// bound parameters.
const maxIDsPerStatement = 5000

func (d *sqlDialect) Ack(ctx context.Context, db *sql.DB, ids []int64) (int64, error) {
	var total int64
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), maxIDsPerStatement)]
		ids = ids[len(chunk):]
		var b strings.Builder
		b.Grow(64 + 21*len(chunk))
		b.WriteString("DELETE FROM " + TableMessages + " WHERE id IN (")
		writeList(&b, chunk)
		b.WriteByte(')')
		res, err := db.ExecContext(ctx, b.String())
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

func (d *sqlDialect) Retry(ctx context.Context, db *sql.DB, retries []Retry) error {
	for len(retries) > 0 {
		chunk := retries[:min(len(retries), maxIDsPerStatement/4)]
		retries = retries[len(chunk):]
		avail := sq.Case("id")
		lastErr := sq.Case("id")
		ids := make([]int64, len(chunk))
		for i, r := range chunk {
			ids[i] = r.RowID
			avail = avail.When(sq.Expr("?", r.RowID), sq.Expr(d.f.plusMicros(d.f.now), max(r.Delay, 0).Microseconds()))
			lastErr = lastErr.When(sq.Expr("?", r.RowID), sq.Expr("?", r.Err))
		}
		q, args, err := d.sb.Update(TableMessages).
			Set("attempts", sq.Expr("attempts + 1")).
			Set("available_at", avail).
			Set("last_error", lastErr).
			Where(sq.Eq{"id": ids}).ToSql()
		if err != nil {
			return err
		}
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}

const deadLetterColumns = "message_id, topic, msg_key, key_hash, payload, headers, shard, created_at"

func (d *sqlDialect) DeadLetter(ctx context.Context, db *sql.DB, failures []Failure) error {
	if len(failures) == 0 {
		return nil
	}
	if len(failures) > maxIDsPerStatement/4 {
		if err := d.DeadLetter(ctx, db, failures[maxIDsPerStatement/4:]); err != nil {
			return err
		}
		failures = failures[:maxIDsPerStatement/4]
	}
	ids := make([]int64, len(failures))
	for i, f := range failures {
		ids[i] = f.RowID
	}
	return d.inTx(ctx, db, func(tx *sql.Tx) error {
		if d.f.forUpdate != "" {
			// Lock the rows first: a relay that races us for the same row
			// waits here and then finds it gone, so no row is dead-lettered
			// twice.
			q, args, err := d.sb.Select("id").From(TableMessages).Where(sq.Eq{"id": ids}).Suffix(d.f.forUpdate).ToSql()
			if err != nil {
				return err
			}
			rows, err := tx.QueryContext(ctx, q, args...)
			if err != nil {
				return err
			}
			if ids, err = scanColumn[int64](rows); err != nil || len(ids) == 0 {
				return err
			}
		}
		lastErr := sq.Case("id")
		for _, f := range failures {
			lastErr = lastErr.When(sq.Expr("?", f.RowID), sq.Expr("?", f.Err))
		}
		// The inner select keeps ? placeholders: the insert numbers them all.
		sel := sq.Select(deadLetterColumns, "attempts + 1").Column(lastErr).Column(d.f.now).
			From(TableMessages).Where(sq.Eq{"id": ids})
		q, args, err := d.sb.Insert(TableDeadLetters).
			Columns(deadLetterColumns, "attempts", "last_error", "dead_at").
			Select(sel).ToSql()
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
		q, args, err = d.sb.Delete(TableMessages).Where(sq.Eq{"id": ids}).ToSql()
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, q, args...)
		return err
	})
}

func (d *sqlDialect) Stats(ctx context.Context, db *sql.DB) (Stats, error) {
	q := "SELECT COUNT(*)," +
		" SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END)," +
		" SUM(CASE WHEN available_at > " + d.f.now + " THEN 1 ELSE 0 END)," +
		" " + d.f.ageMicros + "," +
		" (SELECT COUNT(*) FROM " + TableDeadLetters + ")" +
		" FROM " + TableMessages
	var s Stats
	var retrying, delayed sql.NullInt64
	var age sql.NullFloat64
	if err := db.QueryRowContext(ctx, q).Scan(&s.Pending, &retrying, &delayed, &age, &s.DeadLetters); err != nil {
		return Stats{}, err
	}
	s.Retrying, s.Delayed = retrying.Int64, delayed.Int64
	if age.Valid && age.Float64 > 0 {
		s.OldestAge = time.Duration(age.Float64) * time.Microsecond
	}
	return s, nil
}

func (d *sqlDialect) inTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	var opts *sql.TxOptions
	if d.f.readCommitted {
		opts = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	}
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, rollback(tx))
	}
	return tx.Commit()
}

func rollback(tx *sql.Tx) error {
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return err
	}
	return nil
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func queryLeases(ctx context.Context, q queryer, query string, args ...any) ([]Lease, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Lease
	for rows.Next() {
		var l Lease
		if err := rows.Scan(&l.Shard, &l.Fence); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// scanColumn reads a one-column result and closes rows.
func scanColumn[T any](rows *sql.Rows) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
