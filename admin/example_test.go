package admin_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/admin"
	"github.com/outboxrelay/outbox/dialect"
	"github.com/outboxrelay/outbox/migrations"
)

// An application's admin page: how far behind the outbox is, and the dead
// letters to re-drive.
func Example() {
	dir, _ := os.MkdirTemp("", "admin-example")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite", "file:"+filepath.Join(dir, "app.db")+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_txlock=immediate")
	defer db.Close()
	ctx := context.Background()
	d := dialect.SQLite()
	if err := migrations.Up(ctx, db, d); err != nil {
		panic(err)
	}
	ob, _ := outbox.New(outbox.Config{Dialect: d})
	_ = ob.Enqueue(ctx, db, outbox.Message{Topic: "orders", Key: []byte("o-1"), Value: []byte("created")})

	a, err := admin.New(db, d, admin.Config{})
	if err != nil {
		panic(err)
	}
	st, err := a.Stats(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("pending:", st.Pending, "dead letters:", st.DeadLetters)
	res, err := a.Replay(ctx, admin.Selection{Filter: admin.Filter{Topic: "orders"}})
	fmt.Println("replayed:", res.Done, err)
	_, err = a.GetDeadLetter(ctx, 42)
	fmt.Println(err)
	// Output:
	// pending: 1 dead letters: 0
	// replayed: 0 <nil>
	// outbox admin: no dead letter with id 42 (nothing changed)
}
