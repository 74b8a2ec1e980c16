package orders

import (
	"fmt"

	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver, "sqlite"
)

// Open opens a GORM database of kind sqlite, postgres or mysql.
//
// SQLite: gorm.io/driver/sqlite is the official dialector, but it opens
// mattn/go-sqlite3 (cgo) unless told otherwise. DriverName "sqlite" makes it
// open modernc.org/sqlite instead: pure Go, and the same driver the outbox
// library documents and its outboxtest package links. (mattn's package is
// still linked, unused; with CGO_ENABLED=0 it compiles to a stub.) The
// pure-Go github.com/glebarez/sqlite dialector does not mix with it: its
// driver registers the name "sqlite" too, and a binary that links both,
// such as a test that imports outboxtest, panics at start-up.
//
// PostgreSQL: gorm.io/driver/postgres uses pgx through database/sql (driver
// name "pgx"). MySQL: mysql DSNs need parseTime=true for time.Time columns.
func Open(kind, dsn string, cfg *gorm.Config) (*gorm.DB, error) {
	var d gorm.Dialector
	switch kind {
	case "sqlite":
		d = sqlite.New(sqlite.Config{DriverName: "sqlite", DSN: dsn})
	case "postgres":
		d = postgres.Open(dsn)
	case "mysql":
		d = mysql.Open(dsn)
	default:
		return nil, fmt.Errorf("orders: unknown database kind %q: want sqlite, postgres or mysql", kind)
	}
	if cfg == nil {
		cfg = &gorm.Config{}
	}
	return gorm.Open(d, cfg)
}

// SQLDriver returns the database/sql driver name that Open uses for kind,
// to open more pools on the same database (for a relay, say).
func SQLDriver(kind string) string {
	if kind == "postgres" {
		return "pgx"
	}
	return kind
}
