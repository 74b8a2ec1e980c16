package outbox

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// equalHeaders compares headers including the nil-ness of values.
func equalHeaders(a, b []Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) || (a[i].Value == nil) != (b[i].Value == nil) {
			return false
		}
	}
	return true
}

func fmtHeaders(hs []Header) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, h := range hs {
		if i > 0 {
			b.WriteByte(' ')
		}
		if h.Value == nil {
			fmt.Fprintf(&b, "%q=<nil>", h.Key)
		} else {
			fmt.Fprintf(&b, "%q=%q", h.Key, h.Value)
		}
	}
	b.WriteByte(']')
	return b.String()
}

func TestHeadersRoundTrip(t *testing.T) {
	many := make([]Header, 1000)
	for i := range many {
		many[i] = Header{Key: fmt.Sprintf("h-%04d", i), Value: []byte(strings.Repeat("v", i%7))}
		if i%5 == 0 {
			many[i].Value = nil
		}
	}
	big := bytes.Repeat([]byte{0, 0xff, 'x'}, 100_000) // lengths need multi-byte varints
	tests := []struct {
		name string
		hs   []Header
	}{
		{"one", []Header{{Key: "a", Value: []byte("b")}}},
		{"nil value", []Header{{Key: "a", Value: nil}}},
		{"empty value", []Header{{Key: "a", Value: []byte{}}}},
		{"nil and empty", []Header{{Key: "n", Value: nil}, {Key: "e", Value: []byte{}}, {Key: "n", Value: nil}}},
		{"binary", []Header{{Key: "bin", Value: []byte{0, 0xff, 0, 0xfe, 0x80}}}},
		{"only NUL", []Header{{Key: "z", Value: []byte{0}}}},
		{"utf8 name", []Header{{Key: "ключ-🔑", Value: []byte("ü")}}},
		{"NUL in name", []Header{{Key: "a\x00b", Value: []byte("v")}}},
		{"duplicates kept in order", []Header{{Key: "x", Value: []byte("1")}, {Key: "y"}, {Key: "x", Value: []byte("2")}}},
		{"order kept", []Header{{Key: "z"}, {Key: "a"}, {Key: "m"}}},
		{"long name", []Header{{Key: strings.Repeat("n", 300), Value: []byte("v")}}},
		{"big value", []Header{{Key: "big", Value: big}, {Key: "after", Value: []byte("x")}}},
		{"127 and 128 bytes", []Header{{Key: strings.Repeat("a", 127), Value: make([]byte, 126)}, {Key: strings.Repeat("b", 128), Value: make([]byte, 127)}}},
		{"many", many},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc := encodeHeaders(tc.hs)
			if len(enc) == 0 || enc[0] != 1 {
				t.Fatalf("encoding %x does not start with version 1", enc[:min(len(enc), 8)])
			}
			got, err := DecodeHeaders(enc)
			if err != nil {
				t.Fatalf("DecodeHeaders: %v", err)
			}
			if !equalHeaders(got, tc.hs) {
				if len(tc.hs) > 10 {
					t.Fatalf("round trip of %d headers differs", len(tc.hs))
				}
				t.Fatalf("round trip:\n got %s\nwant %s", fmtHeaders(got), fmtHeaders(tc.hs))
			}
			// Decoded values do not alias the encoding.
			for i := range enc {
				enc[i] = 0xAA
			}
			if !equalHeaders(got, tc.hs) {
				t.Fatal("decoded headers alias the encoded bytes")
			}
		})
	}
}

func TestHeadersGoldenEncoding(t *testing.T) {
	// The stored format must not change: rows written by one release are
	// read by the next.
	tests := []struct {
		hs   []Header
		want []byte
	}{
		{[]Header{{Key: "a", Value: []byte("b")}}, []byte{1, 1, 1, 'a', 2, 'b'}},
		{[]Header{{Key: "a"}}, []byte{1, 1, 1, 'a', 0}},
		{[]Header{{Key: "a", Value: []byte{}}}, []byte{1, 1, 1, 'a', 1}},
		{[]Header{{Key: "k", Value: []byte{0}}, {Key: "xy"}}, []byte{1, 2, 1, 'k', 2, 0, 2, 'x', 'y', 0}},
		{[]Header{{Key: "k", Value: make([]byte, 127)}}, append([]byte{1, 1, 1, 'k', 0x80, 0x01}, make([]byte, 127)...)},
	}
	for _, tc := range tests {
		if got := encodeHeaders(tc.hs); !bytes.Equal(got, tc.want) {
			t.Errorf("encodeHeaders(%s) = %v, want %v", fmtHeaders(tc.hs), got, tc.want)
		}
	}
}

func TestHeadersEmpty(t *testing.T) {
	if got := encodeHeaders(nil); got != nil {
		t.Errorf("encodeHeaders(nil) = %v, want nil", got)
	}
	if got := encodeHeaders([]Header{}); got != nil {
		t.Errorf("encodeHeaders([]) = %v, want nil", got)
	}
	for _, in := range [][]byte{nil, {}} {
		got, err := DecodeHeaders(in)
		if err != nil || got != nil {
			t.Errorf("DecodeHeaders(%v) = %v, %v; want nil, nil", in, got, err)
		}
	}
}

func checkMalformed(t *testing.T, in []byte) {
	t.Helper()
	got, err := DecodeHeaders(in)
	if err == nil {
		t.Fatalf("DecodeHeaders(%v) = %s, want an error", in, fmtHeaders(got))
	}
	if !errors.Is(err, ErrCorruptHeaders) {
		t.Fatalf("DecodeHeaders(%v) error %v does not wrap ErrCorruptHeaders", in, err)
	}
	if got != nil {
		t.Fatalf("DecodeHeaders(%v) returned headers with its error", in)
	}
}

func TestDecodeHeadersTruncated(t *testing.T) {
	inputs := [][]Header{
		{{Key: "a", Value: []byte("b")}},
		{{Key: "a"}},
		{{Key: "a", Value: []byte{}}},
		{{Key: "key", Value: []byte{0, 0xff}}, {Key: "nil"}, {Key: "empty", Value: []byte{}}},
		{{Key: strings.Repeat("n", 200), Value: make([]byte, 300)}},
	}
	for _, hs := range inputs {
		enc := encodeHeaders(hs)
		for i := 1; i < len(enc); i++ {
			// A copy with no spare capacity, so reads past the end fail loudly.
			prefix := bytes.Clone(enc[:i])
			checkMalformed(t, prefix)
		}
	}
}

func TestDecodeHeadersMalformed(t *testing.T) {
	valid := encodeHeaders([]Header{{Key: "a", Value: []byte("b")}})
	bigCount := binary.AppendUvarint([]byte{1}, 1<<62)
	bigCount = append(bigCount, 1, 'a', 0)
	tests := []struct {
		name string
		in   []byte
	}{
		{"trailing byte", append(bytes.Clone(valid), 0)},
		{"trailing bytes", append(bytes.Clone(valid), 1, 2, 3)},
		{"trailing header", append(encodeHeaders([]Header{{Key: "a"}}), 1, 'b', 0)},
		{"version 0", append([]byte{0}, valid[1:]...)},
		{"version 2", append([]byte{2}, valid[1:]...)},
		{"version 0xff", append([]byte{0xff}, valid[1:]...)},
		{"version only", []byte{1}},
		{"wrong version only", []byte{7}},
		{"count zero", []byte{1, 0}},
		{"count zero trailing", []byte{1, 0, 0, 0}},
		{"count 2 one header", []byte{1, 2, 1, 'a', 0}},
		{"count larger than input", []byte{1, 100, 1, 'a', 0}},
		{"count huge", bigCount},
		{"count overflowing varint", []byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"count unterminated varint", []byte{1, 0x80, 0x80}},
		{"name length beyond input", []byte{1, 1, 5, 'a', 0}},
		{"name length huge", []byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 'a', 0}},
		{"name length unterminated", []byte{1, 1, 0x80, 0x80}},
		{"value length beyond input", []byte{1, 1, 1, 'a', 5, 'x'}},
		{"value length huge", []byte{1, 1, 1, 'a', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"value length unterminated", []byte{1, 1, 1, 'a', 0x80}},
		{"name not utf8", []byte{1, 1, 1, 0xff, 0}},
		{"name truncated utf8", []byte{1, 1, 2, 'a', 0xc3, 0}},
		{"second name not utf8", []byte{1, 2, 1, 'a', 0, 2, 0xc0, 0x80, 0}},
		{"name surrogate", append([]byte{1, 1, 3, 0xed, 0xa0, 0x80}, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkMalformed(t, tc.in)
		})
	}
}

// TestDecodeHeadersEveryByteFlip flips each byte of a valid encoding: the
// decoder either errors or returns headers that re-encode consistently.
func TestDecodeHeadersEveryByteFlip(t *testing.T) {
	enc := encodeHeaders([]Header{{Key: "ab", Value: []byte{0, 1}}, {Key: "c"}, {Key: "d", Value: []byte{}}})
	for i := range enc {
		for _, v := range []byte{0, 1, 2, 0x7f, 0x80, 0xff, enc[i] ^ 1} {
			in := bytes.Clone(enc)
			in[i] = v
			checkDecodeProperty(t, in)
		}
	}
}

// checkDecodeProperty is the fuzz property of DecodeHeaders.
func checkDecodeProperty(t *testing.T, in []byte) {
	t.Helper()
	hs, err := DecodeHeaders(in)
	if err != nil {
		if !errors.Is(err, ErrCorruptHeaders) {
			t.Fatalf("DecodeHeaders(%x): error %v does not wrap ErrCorruptHeaders", in, err)
		}
		if hs != nil {
			t.Fatalf("DecodeHeaders(%x): headers with an error", in)
		}
		return
	}
	if len(in) == 0 {
		if hs != nil {
			t.Fatalf("DecodeHeaders(empty) = %v", hs)
		}
		return
	}
	if len(hs) == 0 {
		t.Fatalf("DecodeHeaders(%x) succeeded with no headers", in)
	}
	// Never more headers than the input can hold (two bytes each).
	if len(hs) > len(in)/2 {
		t.Fatalf("DecodeHeaders(%x) returned %d headers", in, len(hs))
	}
	for i, h := range hs {
		if !utf8.ValidString(h.Key) {
			t.Fatalf("DecodeHeaders(%x): header %d name %q is not UTF-8", in, i, h.Key)
		}
	}
	re := encodeHeaders(hs)
	if len(re) > len(in) {
		// The canonical encoding is never longer than any accepted one.
		t.Fatalf("re-encoding of %x is longer: %x", in, re)
	}
	again, err := DecodeHeaders(re)
	if err != nil {
		t.Fatalf("DecodeHeaders(encodeHeaders(DecodeHeaders(%x))): %v", in, err)
	}
	if !equalHeaders(hs, again) {
		t.Fatalf("re-decoded headers differ:\n got %s\nwant %s", fmtHeaders(again), fmtHeaders(hs))
	}
	if !bytes.Equal(encodeHeaders(again), re) {
		t.Fatalf("encoding is not stable for %x", in)
	}
}

func FuzzDecodeHeaders(f *testing.F) {
	seeds := [][]byte{
		nil,
		{1},
		{0},
		{2, 1, 1, 'a', 0},
		{1, 0},
		{1, 1, 1, 'a', 0},
		{1, 1, 1, 'a', 1},
		{1, 1, 1, 'a', 2, 'b'},
		{1, 1, 0, 0},             // empty name: decodes, Validate rejects it
		{1, 1, 0x80, 0x00, 0, 0}, // non-minimal varint
		{1, 1, 1, 0xff, 0},
		{1, 2, 1, 'a', 0},
		{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		{1, 1, 1, 'a', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		encodeHeaders([]Header{{Key: "content-type", Value: []byte("application/json")}, {Key: "trace", Value: nil}, {Key: "e", Value: []byte{}}}),
		encodeHeaders([]Header{{Key: "bin", Value: []byte{0, 0xff, 0}}}),
		encodeHeaders([]Header{{Key: "k", Value: make([]byte, 200)}}),
		append(encodeHeaders([]Header{{Key: "k"}}), 0),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkDecodeProperty(t, in)
	})
}

// headersFromBytes builds headers from arbitrary bytes: for each header a
// name length byte, the name, a flag byte (odd: nil value), a value length
// byte and the value. Names are made valid UTF-8.
func headersFromBytes(data []byte) []Header {
	var hs []Header
	take := func(n int) []byte {
		n = min(n, len(data))
		b := data[:n]
		data = data[n:]
		return b
	}
	for len(data) > 0 {
		kl := int(take(1)[0])
		key := strings.ToValidUTF8(string(take(kl)), "\uFFFD")
		if key == "" {
			key = "k"
		}
		h := Header{Key: key}
		if flag := take(1); len(flag) == 1 && flag[0]&1 == 0 {
			vl := 0
			if l := take(1); len(l) == 1 {
				vl = int(l[0])
			}
			h.Value = bytes.Clone(take(vl))
			if h.Value == nil {
				h.Value = []byte{}
			}
		}
		hs = append(hs, h)
	}
	return hs
}

func FuzzHeadersRoundTrip(f *testing.F) {
	f.Add([]byte{}, uint16(0))
	f.Add([]byte{1, 'a', 0, 1, 'b'}, uint16(0))
	f.Add([]byte{1, 'a', 1}, uint16(0))
	f.Add([]byte{1, 'a', 0, 0}, uint16(0))
	f.Add([]byte{3, 0xff, 0xfe, 0, 0, 3, 0, 0xff, 0}, uint16(0))
	f.Add([]byte{2, 'a', 'b', 0, 2, 0, 0, 1, 'c', 1, 1, 'd', 0, 0}, uint16(0))
	f.Add([]byte{1, 'x', 0, 10, 1, 2, 3}, uint16(300))
	f.Add([]byte("\x05hello\x00\x05world"), uint16(65535))
	f.Fuzz(func(t *testing.T, data []byte, pad uint16) {
		hs := headersFromBytes(data)
		// Exercise multi-byte value lengths without big inputs.
		if len(hs) > 0 && pad > 0 {
			hs[0].Value = append(bytes.Clone(hs[0].Value), make([]byte, pad)...)
		}
		enc := encodeHeaders(hs)
		if len(hs) == 0 {
			if enc != nil {
				t.Fatalf("no headers encode to %v", enc)
			}
			return
		}
		got, err := DecodeHeaders(enc)
		if err != nil {
			t.Fatalf("DecodeHeaders(encodeHeaders(%s)): %v", fmtHeaders(hs), err)
		}
		if !equalHeaders(got, hs) {
			t.Fatalf("round trip:\n got %s\nwant %s", fmtHeaders(got), fmtHeaders(hs))
		}
		// Every strict prefix is rejected, and so is any extra byte.
		if len(enc) < 64 {
			for i := 1; i < len(enc); i++ {
				if _, err := DecodeHeaders(bytes.Clone(enc[:i])); !errors.Is(err, ErrCorruptHeaders) {
					t.Fatalf("prefix %x of %x: err %v", enc[:i], enc, err)
				}
			}
		}
		if _, err := DecodeHeaders(append(bytes.Clone(enc), 0)); !errors.Is(err, ErrCorruptHeaders) {
			t.Fatalf("trailing byte after %x: err %v", enc, err)
		}
	})
}
