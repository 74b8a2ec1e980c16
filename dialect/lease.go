package dialect

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	sq "github.com/Masterminds/squirrel"
)

// The shard leases and the relays' heartbeats. Every statement here binds
// its values and is built with squirrel.

func (d *sqlDialect) EnsureShards(ctx context.Context, db *sql.DB, n int) error {
	if n <= 0 {
		return fmt.Errorf("dialect: shard count must be positive, got %d", n)
	}
	have, err := querySq(ctx, d, db, d.shardCountSQL(n), scanOne[int])
	if err != nil {
		return err
	}
	if len(have) == 1 && have[0] == n {
		return nil
	}
	// Two relays starting together may deadlock on InnoDB's duplicate-key
	// locks; the statement is idempotent, so try again.
	for attempt := 0; ; attempt++ {
		_, err = d.execSq(ctx, db, d.ensureShardsSQL(n))
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

func (d *sqlDialect) shardCountSQL(n int) sq.Sqlizer {
	return d.sb.Select("COUNT(*)").From(TableShards).Where(sq.Lt{"shard": n})
}

// ensureShardsSQL inserts the shard rows 0..n-1 that do not exist.
func (d *sqlDialect) ensureShardsSQL(n int) sq.Sqlizer {
	ins := d.sb.Insert(TableShards).Columns("shard", "fence")
	if d.f.insertIgnore != "" {
		ins = ins.Options(d.f.insertIgnore)
	}
	for i := range n {
		ins = ins.Values(i, 0)
	}
	if d.f.onConflict != "" {
		ins = ins.Suffix(d.f.onConflict)
	}
	return ins
}

func (d *sqlDialect) Heartbeat(ctx context.Context, db *sql.DB, relayID string, ttl time.Duration) (int, error) {
	if _, err := d.execSq(ctx, db, d.heartbeatSQL(relayID)); err != nil {
		return 0, err
	}
	if err := d.execReadCommitted(ctx, db, d.pruneRelaysSQL(ttl)); err != nil {
		return 0, err
	}
	live, err := querySq(ctx, d, db, d.liveRelaysSQL(), scanOne[int])
	if err != nil {
		return 0, err
	}
	return live[0], nil
}

func (d *sqlDialect) heartbeatSQL(relayID string) sq.Sqlizer {
	return d.sb.Insert(TableRelays).Columns("relay_id", "heartbeat_at").
		Values(relayID, sq.Expr(d.f.now)).Suffix(d.f.upsertHeartbeat)
}

func (d *sqlDialect) liveRelaysSQL() sq.Sqlizer {
	return d.sb.Select("COUNT(*)").From(TableRelays)
}

// pruneRelaysSQL forgets the relays silent for longer than ttl.
func (d *sqlDialect) pruneRelaysSQL(ttl time.Duration) sq.Sqlizer {
	return d.sb.Delete(TableRelays).Where(sq.Expr("heartbeat_at < "+d.f.later, -ttl.Microseconds()))
}

func (d *sqlDialect) Deregister(ctx context.Context, db *sql.DB, relayID string) error {
	_, err := d.execSq(ctx, db, d.deregisterSQL(relayID))
	return err
}

func (d *sqlDialect) deregisterSQL(relayID string) sq.Sqlizer {
	return d.sb.Delete(TableRelays).Where(sq.Eq{"relay_id": relayID})
}

// freeShards selects up to max shards that nobody holds or whose lease
// expired, skipping the rows other claimers lock. With nested, it keeps ?
// placeholders for the statement it is nested in to number.
func (d *sqlDialect) freeShards(max int, nested bool) sq.SelectBuilder {
	sb := d.sb
	if nested {
		sb = sq.StatementBuilder
	}
	sel := sb.Select("shard").From(TableShards).
		Where(sq.Or{sq.Eq{"owner": nil}, sq.Expr("lease_until < " + d.f.now)}).
		OrderBy("shard").Limit(uint64(max))
	if d.f.skipLocked != "" {
		sel = sel.Suffix(d.f.skipLocked)
	}
	return sel
}

// takeShards gives the shards that match where to relayID, with a new fence.
func (d *sqlDialect) takeShards(relayID string, lease time.Duration, where any) sq.UpdateBuilder {
	return d.sb.Update(TableShards).
		Set("owner", relayID).
		Set("lease_until", d.later(lease.Microseconds())).
		Set("fence", sq.Expr("fence + 1")).
		Where(where)
}

// leasesOf selects the shard and fence of the shards that match where.
func (d *sqlDialect) leasesOf(where any) sq.SelectBuilder {
	return d.sb.Select("shard", "fence").From(TableShards).Where(where).OrderBy("shard")
}

func (d *sqlDialect) Acquire(ctx context.Context, db *sql.DB, relayID string, max int, lease time.Duration) ([]Lease, error) {
	if max <= 0 {
		return nil, nil
	}
	if d.f.returning {
		// One statement: the sub-select locks (PostgreSQL) or, in SQLite,
		// the single writer makes the whole statement a compare-and-set.
		return querySq(ctx, d, db, d.acquireSQL(relayID, max, lease), scanLease)
	}
	var out []Lease
	err := d.inTx(ctx, db, func(tx *sql.Tx) error {
		shards, err := querySq(ctx, d, tx, d.freeShards(max, false), scanOne[int])
		if err != nil || len(shards) == 0 {
			return err
		}
		if _, err := d.execSq(ctx, tx, d.takeShards(relayID, lease, sq.Eq{"shard": shards})); err != nil {
			return err
		}
		out, err = querySq(ctx, d, tx, d.leasesOf(sq.Eq{"shard": shards}), scanLease)
		return err
	})
	return out, err
}

// returningLeases is the suffix of the lease statements that report their
// shards and fences in one statement (flavors with RETURNING).
const returningLeases = "RETURNING shard, fence"

// acquireSQL takes up to max free shards in one statement (with RETURNING).
func (d *sqlDialect) acquireSQL(relayID string, max int, lease time.Duration) sq.Sqlizer {
	return d.takeShards(relayID, lease, sq.Expr("shard IN (?)", d.freeShards(max, true))).
		Suffix(returningLeases)
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
	up := d.renewSQL(relayID, leases, lease)
	if d.f.returning {
		return querySq(ctx, d, db, up.Suffix(returningLeases), scanLease)
	}
	var out []Lease
	err := d.inTx(ctx, db, func(tx *sql.Tx) error {
		if _, err := d.execSq(ctx, tx, up); err != nil {
			return err
		}
		// Rows that matched are locked by the update until commit, and
		// nobody else can make a row match owner = relayID.
		var err error
		out, err = querySq(ctx, d, tx, d.leasesOf(heldBy(relayID, leases)), scanLease)
		return err
	})
	return out, err
}

func (d *sqlDialect) renewSQL(relayID string, leases []Lease, lease time.Duration) sq.UpdateBuilder {
	return d.sb.Update(TableShards).
		Set("lease_until", d.later(lease.Microseconds())).
		Where(heldBy(relayID, leases))
}

func (d *sqlDialect) Release(ctx context.Context, db *sql.DB, relayID string, leases []Lease) error {
	if len(leases) == 0 {
		return nil
	}
	return d.execReadCommitted(ctx, db, d.releaseSQL(relayID, leases))
}

// execReadCommitted runs s alone, in a READ COMMITTED transaction where
// the flavor asks (MySQL), as the other lease statements: there an update
// that scans reads a row another relay has locked in its last committed
// version and skips it when it does not match (InnoDB's semi-consistent
// read), instead of waiting for it, and a scan keeps no locks on the rows
// it does not change.
func (d *sqlDialect) execReadCommitted(ctx context.Context, db *sql.DB, s sq.Sqlizer) error {
	if !d.f.readCommitted {
		_, err := d.execSq(ctx, db, s)
		return err
	}
	return d.inTx(ctx, db, func(tx *sql.Tx) error {
		_, err := d.execSq(ctx, tx, s)
		return err
	})
}

func (d *sqlDialect) releaseSQL(relayID string, leases []Lease) sq.Sqlizer {
	return d.sb.Update(TableShards).
		Set("owner", nil).Set("lease_until", nil).
		Where(heldBy(relayID, leases))
}
