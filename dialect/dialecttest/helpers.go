package dialecttest

import (
	"context"
	"database/sql"
	"hash/fnv"
	"strings"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func keyHash(key []byte) int64 {
	h := fnv.New64a()
	h.Write(key)
	return int64(h.Sum64())
}

// msg builds a row; key "" means no key.
func msg(id, key string, value string) dialect.InsertRow {
	m := dialect.InsertRow{MessageID: id, Topic: "orders", Value: []byte(value)}
	if key != "" {
		m.Key = []byte(key)
		m.KeyHash = keyHash(m.Key)
		m.Shard = int(uint64(m.KeyHash) % numShards)
	} else {
		m.Shard = int(uint64(keyHash([]byte(id))) % numShards)
	}
	return m
}

// onShard returns a row of key on shard, whatever the key's hash.
func onShard(id, key string, shard int) dialect.InsertRow {
	m := msg(id, key, id)
	m.Shard = shard
	return m
}

func allShards() []int {
	s := make([]int, numShards)
	for i := range s {
		s[i] = i
	}
	return s
}

func (s suite) insert(t *testing.T, db *sql.DB, msgs ...dialect.InsertRow) {
	t.Helper()
	ctx := ctxT(t)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Dialect.Insert(ctx, tx, msgs); err != nil {
		tx.Rollback()
		t.Fatalf("Insert: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func (s suite) read(t *testing.T, db *sql.DB, shards []int, limit int) []dialect.Row {
	t.Helper()
	recs, err := s.Dialect.ReadBatch(ctxT(t), db, dialect.ReadRequest{Shards: shards, Limit: limit})
	if err != nil {
		t.Fatalf("ReadBatch: %v", err)
	}
	return recs
}

func ids(recs []dialect.Row) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.MessageID
	}
	return out
}

// isRetriableContention reports lock contention errors a relay retries
// (deadlock victims, SQLite busy); they must never corrupt data.
func isRetriableContention(err error) bool {
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "deadlock") || strings.Contains(s, "database is locked") || strings.Contains(s, "busy")
}
