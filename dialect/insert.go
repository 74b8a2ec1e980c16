package dialect

import "context"

// maxLiteralBytes is the most payload (keys, values, headers, ids) that
// Insert writes as literals. Hexadecimal doubles it on the wire, and the
// statement must stay well below MariaDB's default max_allowed_packet
// (16 MiB); above it, bound parameters (which drivers send as long data)
// carry the values, at the price of a prepare round trip that the
// transfer dwarfs anyway.
const maxLiteralBytes = 4 << 20

func (d *sqlDialect) Insert(ctx context.Context, exec Execer, rows []InsertRow) error {
	if len(rows) == 0 {
		return nil
	}
	bind := d.f.bytesLiteral == nil || payloadBytes(rows) > maxLiteralBytes
	q, args := d.insertSQL(rows, bind)
	_, err := exec.ExecContext(ctx, q, args...)
	return err
}

// insertSQL is the one multi-row INSERT of rows, with its values as
// literals or, with bind, as bound parameters (integers are literals
// either way).
func (d *sqlDialect) insertSQL(rows []InsertRow, bind bool) (string, []any) {
	const columns = "INSERT INTO " + TableMessages +
		" (message_id, topic, msg_key, key_hash, payload, headers, shard, created_at, available_at) VALUES "
	size := len(columns)
	for i := range rows {
		size += 2*rowBytes(&rows[i]) + 2*len(d.f.now) + 200
	}
	s := d.newStmt(bind, size)
	s.WriteString(columns)
	for i := range rows {
		r := &rows[i]
		if i > 0 {
			s.WriteByte(',')
		}
		s.WriteByte('(')
		s.text(r.MessageID)
		s.WriteByte(',')
		s.text(r.Topic)
		s.WriteByte(',')
		s.bytes(r.Key)
		s.WriteByte(',')
		if r.Key != nil {
			s.int(r.KeyHash)
		} else {
			s.WriteString("NULL")
		}
		s.WriteByte(',')
		s.bytes(r.Value)
		s.WriteByte(',')
		s.bytes(r.Headers)
		s.WriteByte(',')
		s.int(int64(r.Shard))
		s.WriteByte(',')
		s.now() // created_at
		s.WriteByte(',')
		if r.Delay > 0 {
			s.later(r.Delay.Microseconds())
		} else {
			s.now()
		}
		s.WriteByte(')')
	}
	return s.String(), s.args
}

// rowBytes is what a row carries as strings and byte strings.
func rowBytes(r *InsertRow) int {
	return len(r.MessageID) + len(r.Topic) + len(r.Key) + len(r.Value) + len(r.Headers)
}

func payloadBytes(rows []InsertRow) int {
	n := 0
	for i := range rows {
		n += rowBytes(&rows[i])
	}
	return n
}
