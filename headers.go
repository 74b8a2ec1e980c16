package outbox

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// headersVersion is the first byte of encoded headers.
const headersVersion = 1

// encodeHeaders encodes headers as they are stored in the outbox table:
// a version byte (1), the number of headers, then for each header the
// length of its name and the name, and its value length plus one (0 for a
// nil value) and the value; every number an unsigned varint. No headers
// encode to nil.
func encodeHeaders(hs []Header) []byte {
	if len(hs) == 0 {
		return nil
	}
	n := 1 + binary.MaxVarintLen64
	for _, h := range hs {
		n += 2*binary.MaxVarintLen64 + len(h.Key) + len(h.Value)
	}
	b := make([]byte, 0, n)
	b = append(b, headersVersion)
	b = binary.AppendUvarint(b, uint64(len(hs)))
	for _, h := range hs {
		b = binary.AppendUvarint(b, uint64(len(h.Key)))
		b = append(b, h.Key...)
		if h.Value == nil {
			b = binary.AppendUvarint(b, 0)
			continue
		}
		b = binary.AppendUvarint(b, uint64(len(h.Value))+1)
		b = append(b, h.Value...)
	}
	return b
}

// DecodeHeaders decodes the headers column of an outbox row (what Enqueue
// wrote). Malformed input (truncated, trailing bytes, unknown version, a
// name that is not UTF-8) returns an error wrapping ErrCorruptHeaders; it never panics, and it
// grows its result as headers parse, so a forged header count cannot make
// it allocate ahead of the input.
func DecodeHeaders(b []byte) ([]Header, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[0] != headersVersion {
		return nil, fmt.Errorf("%w: unknown version %d", ErrCorruptHeaders, b[0])
	}
	b = b[1:]
	count, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, fmt.Errorf("%w: bad header count", ErrCorruptHeaders)
	}
	b = b[n:]
	// Each header takes at least two bytes, which bounds the allocation.
	if count == 0 || count > uint64(len(b))/2 {
		return nil, fmt.Errorf("%w: header count %d does not fit %d bytes", ErrCorruptHeaders, count, len(b))
	}
	hs := make([]Header, 0, min(count, 16))
	for i := 0; uint64(i) < count; i++ {
		var h Header
		kl, n := binary.Uvarint(b)
		if n <= 0 || kl > uint64(len(b)-n) {
			return nil, fmt.Errorf("%w: header %d: bad name length", ErrCorruptHeaders, i)
		}
		b = b[n:]
		key := b[:kl]
		if !utf8.Valid(key) {
			return nil, fmt.Errorf("%w: header %d: name is not UTF-8", ErrCorruptHeaders, i)
		}
		h.Key = string(key)
		b = b[kl:]
		vl, n := binary.Uvarint(b)
		if n <= 0 || (vl > 0 && vl-1 > uint64(len(b)-n)) {
			return nil, fmt.Errorf("%w: header %d: bad value length", ErrCorruptHeaders, i)
		}
		b = b[n:]
		if vl > 0 {
			h.Value = append([]byte{}, b[:vl-1]...)
			b = b[vl-1:]
		}
		hs = append(hs, h)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorruptHeaders, len(b))
	}
	return hs, nil
}
