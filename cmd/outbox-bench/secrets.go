package main

import (
	"bytes"
	"io"
	"sync"
)

// ---------------------------------------------------------------------------
// Secrets

// secrets are the passwords seen in DSNs; scrubWriter masks them.
var secrets struct {
	sync.Mutex
	list []string
}

// registerSecret adds s to the strings masked on stderr.
func registerSecret(s string) {
	if len(s) < 3 { // masking "a" everywhere would garble the output
		return
	}
	secrets.Lock()
	defer secrets.Unlock()
	for _, have := range secrets.list {
		if have == s {
			return
		}
	}
	secrets.list = append(secrets.list, s)
}

// scrubWriter serializes writes to w and masks registered secrets in them.
type scrubWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// newScrubWriter wraps w.
func newScrubWriter(w io.Writer) io.Writer {
	if s, ok := w.(*scrubWriter); ok {
		return s
	}
	return &scrubWriter{w: w}
}

// Write writes p, with secrets masked, in one call to the underlying writer.
func (s *scrubWriter) Write(p []byte) (int, error) {
	secrets.Lock()
	out := p
	for _, sec := range secrets.list {
		if bytes.Contains(out, []byte(sec)) {
			out = bytes.ReplaceAll(out, []byte(sec), []byte("xxxxx"))
		}
	}
	secrets.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
