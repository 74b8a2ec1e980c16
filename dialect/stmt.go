package dialect

import (
	"strconv"
	"strings"
)

// stmt writes the statements of the hot paths (Insert, ReadBatch, Ack):
// integers always as literals, and byte strings and text as literals too
// unless bind is set, then as bound parameters. A statement with no bound
// parameter is one round trip on every driver (no prepare) and has no
// placeholder limit; nothing the caller supplies can end a literal (integers
// are digits, bytes hexadecimal, text hexadecimal or an escaped E'...' string).
type stmt struct {
	strings.Builder
	f    *flavor
	bind bool
	args []any
}

func (d *sqlDialect) newStmt(bind bool, size int) *stmt {
	s := &stmt{f: &d.f, bind: bind}
	s.Grow(size)
	return s
}

// int writes n.
func (s *stmt) int(n int64) {
	var num [20]byte
	s.Write(strconv.AppendInt(num[:0], n, 10))
}

// ints writes comma-separated integers.
func (s *stmt) ints(ns []int64) {
	for i, n := range ns {
		if i > 0 {
			s.WriteByte(',')
		}
		s.int(n)
	}
}

// bytes writes v, NULL when v is nil.
func (s *stmt) bytes(v []byte) {
	switch {
	case v == nil:
		s.WriteString("NULL")
	case s.bind:
		s.param(v)
	default:
		s.f.bytesLiteral(&s.Builder, v)
	}
}

// text writes v.
func (s *stmt) text(v string) {
	if s.bind {
		s.param(v)
		return
	}
	s.f.textLiteral(&s.Builder, v)
}

// param writes the next placeholder and binds v to it.
func (s *stmt) param(v any) {
	s.args = append(s.args, v)
	if s.f.dollar {
		s.WriteByte('$')
		s.int(int64(len(s.args)))
		return
	}
	s.WriteByte('?')
}

// now writes the database clock.
func (s *stmt) now() { s.WriteString(s.f.now) }

// later writes the database clock plus micros.
func (s *stmt) later(micros int64) {
	before, after, _ := strings.Cut(s.f.later, "?")
	s.WriteString(before)
	s.int(micros)
	s.WriteString(after)
}

// writeHex writes v in lowercase hexadecimal.
func writeHex(b *strings.Builder, v []byte) {
	const digits = "0123456789abcdef"
	for _, c := range v {
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&0x0f])
	}
}
