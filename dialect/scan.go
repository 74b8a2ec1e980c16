package dialect

import (
	"fmt"
	"time"
)

// dbTime scans a timestamp whatever form the driver returns it in:
// time.Time (lib/pq, go-sql-driver/mysql with parseTime=true), text
// (go-sql-driver/mysql without parseTime) or integer microseconds since the
// Unix epoch (how the SQLite dialect stores time).
type dbTime struct{ t time.Time }

// mysqlLayout is how MySQL and MariaDB print DATETIME(6) values.
const mysqlLayout = "2006-01-02 15:04:05.999999"

func (d *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		d.t = time.Time{}
	case time.Time:
		d.t = v.UTC()
	case int64:
		d.t = time.UnixMicro(v).UTC()
	case []byte:
		return d.parse(string(v))
	case string:
		return d.parse(v)
	default:
		return fmt.Errorf("dialect: cannot scan %T into a time", src)
	}
	return nil
}

func (d *dbTime) parse(s string) error {
	t, err := time.ParseInLocation(mysqlLayout, s, time.UTC)
	if err != nil {
		return fmt.Errorf("dialect: cannot parse time %q: %w", s, err)
	}
	d.t = t
	return nil
}
