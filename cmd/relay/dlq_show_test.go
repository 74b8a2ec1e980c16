package main

import (
	"strings"
	"testing"

	"github.com/outboxrelay/outbox/admin"
)

// TestPrintDeadLetterCleansNames: control characters in a header's name
// and in the topic (an escape sequence that would rewrite the terminal)
// are not printed by dlq show.
func TestPrintDeadLetterCleansNames(t *testing.T) {
	// Encoded headers: version 1, one header, its name "a\x1b[2J" (5
	// bytes), its value "v" (length + 1 = 2).
	x := admin.DeadLetter{ID: 1, MessageID: "m", Topic: "or\x1b[31mders", Headers: []byte{1, 1, 5, 'a', 0x1b, '[', '2', 'J', 2, 'v'}}
	var b strings.Builder
	printDeadLetter(&b, x, "hex")
	out := b.String()
	if strings.ContainsRune(out, 0x1b) || !strings.Contains(out, "headers:     1\n  a\uFFFD[2J: v\n") {
		t.Errorf("dlq show prints control characters, or not the header:\n%q", out)
	}
}
