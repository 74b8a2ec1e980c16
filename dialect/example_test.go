package dialect_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite"

	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/migrations"
)

// A dialect is what the library and the relay use for SQL. Applications
// pick one and pass it to outbox.Config and outbox.RelayConfig; this shows
// the relay's side of it: lease a shard, read it in order, acknowledge.
func ExampleSQLite() {
	dir, _ := os.MkdirTemp("", "dialect-example")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite", "file:"+filepath.Join(dir, "app.db")+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_txlock=immediate")
	defer db.Close()
	ctx := context.Background()
	d := dialect.SQLite()
	if err := migrations.Up(ctx, db, d); err != nil {
		panic(err)
	}

	_ = d.Insert(ctx, db, []dialect.InsertRow{
		{MessageID: "m1", Topic: "orders", Key: []byte("o-1"), Value: []byte("created"), Shard: 0},
		{MessageID: "m2", Topic: "orders", Key: []byte("o-1"), Value: []byte("paid"), Shard: 0},
	})
	_ = d.EnsureShards(ctx, db, 1)
	leases, _ := d.Acquire(ctx, db, "relay-a", 1, 10_000_000_000)
	recs, _ := d.ReadBatch(ctx, db, dialect.ReadRequest{Shards: []int{leases[0].Shard}, Limit: 100})
	for _, r := range recs {
		fmt.Println(r.MessageID, string(r.Value))
	}
	n, _ := d.Ack(ctx, db, []int64{recs[0].RowID, recs[1].RowID})
	fmt.Println("acked", n)
	// Output:
	// m1 created
	// m2 paid
	// acked 2
}
