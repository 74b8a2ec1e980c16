// Package sqlitetest gives tests a real Outbox on a fresh, migrated SQLite
// database, for tests of transactional behaviour: that a message is
// visible after the business change commits and absent after it rolls
// back, or that a duplicate Message.ID is rejected. It compiles the pure-Go
// modernc.org/sqlite driver, which is why it is not part of outboxtest.
package sqlitetest

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/migrations"
	"github.com/outboxrelay/outbox/outboxtest"
)

// DB is a real Outbox on a fresh, migrated SQLite database, for tests
// of transactional behaviour. Run the code under test in a transaction of
// DB with Outbox as its Enqueuer, then read back what is pending with
// Messages.
type DB struct {
	// DB is the database, a file in the test's temporary directory. It is
	// closed when the test ends.
	DB *sql.DB
	// Outbox enqueues into DB's outbox table, with the default Config.
	Outbox *outbox.Outbox
}

// New creates a SQLite database in tb.TempDir(), applies the outbox
// migrations and returns it with an Outbox for it. The database is closed
// by tb.Cleanup. It fails tb on any error.
func New(tb testing.TB) *DB {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "outbox.db")
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(20000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		tb.Fatalf("sqlitetest: open SQLite: %v", err)
		return nil
	}
	tb.Cleanup(func() { _ = db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d := dialect.SQLite()
	if err := migrations.Up(ctx, db, d); err != nil {
		tb.Fatalf("sqlitetest: migrate SQLite: %v", err)
		return nil
	}
	ob, err := outbox.New(outbox.Config{Dialect: d})
	if err != nil {
		tb.Fatalf("sqlitetest: %v", err)
		return nil
	}
	return &DB{DB: db, Outbox: ob}
}

// Messages returns the messages pending in the outbox table, in the order
// they will be published (by row id), with ID, Topic, Key, Value and
// Headers as they were enqueued; nil and empty keys and values stay
// distinct. AvailableAt and Delay are not read back. It fails tb on any
// error.
func (s *DB) Messages(tb outboxtest.TB) []outbox.Message {
	tb.Helper()
	if s == nil || s.DB == nil {
		tb.Fatalf("sqlitetest: Messages: nil *DB or DB.DB")
		return nil
	}
	rows, err := s.DB.QueryContext(context.Background(),
		"SELECT message_id, topic, msg_key, payload, headers, msg_key IS NULL, payload IS NULL FROM "+
			dialect.TableMessages+" ORDER BY id")
	if err != nil {
		tb.Fatalf("sqlitetest: read %s: %v", dialect.TableMessages, err)
		return nil
	}
	defer rows.Close()
	var msgs []outbox.Message
	for rows.Next() {
		var (
			m                outbox.Message
			headers          []byte
			keyNull, valNull bool
		)
		if err := rows.Scan(&m.ID, &m.Topic, &m.Key, &m.Value, &headers, &keyNull, &valNull); err != nil {
			tb.Fatalf("sqlitetest: read %s: %v", dialect.TableMessages, err)
			return nil
		}
		// The driver returns a zero-length BLOB as nil.
		m.Key = notNil(m.Key, keyNull)
		m.Value = notNil(m.Value, valNull)
		if m.Headers, err = outbox.DecodeHeaders(headers); err != nil {
			tb.Fatalf("sqlitetest: message %q: %v", m.ID, err)
			return nil
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("sqlitetest: read %s: %v", dialect.TableMessages, err)
		return nil
	}
	return msgs
}

// RequireNoMessages fails tb if any message is pending in the outbox table,
// for example after the code under test rolled back.
func (s *DB) RequireNoMessages(tb outboxtest.TB) {
	tb.Helper()
	if msgs := s.Messages(tb); len(msgs) > 0 {
		tb.Fatalf("sqlitetest: expected no pending messages, found %d:%s", len(msgs), outboxtest.List(msgs))
	}
}

// notNil returns b, or an empty non-nil slice when the column was not NULL.
func notNil(b []byte, null bool) []byte {
	if b == nil && !null {
		return []byte{}
	}
	return b
}
