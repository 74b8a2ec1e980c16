package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryLinksNoBroker: relay's binary links neither the demo's
// in-process broker (franz-go's kfake, internal/localkafka) nor its ledger:
// they made it 33 MB instead of 25 (the demo is cmd/outbox-demo). SQLite's
// driver stays: sqlite: URLs are a supported database (about 4 MB).
func TestBinaryLinksNoBroker(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 100 {
		t.Fatalf("go list -deps listed %d packages, expected the whole graph:\n%s", len(deps), out)
	}
	forbidden := []string{"github.com/twmb/franz-go", "github.com/outboxrelay/outbox/internal/localkafka", "github.com/outboxrelay/outbox/internal/verify"}
	sqlite := false
	for _, p := range deps {
		for _, f := range forbidden {
			if strings.HasPrefix(p, f) {
				t.Errorf("relay links %s: keep the demo's broker out of its binary", p)
			}
		}
		sqlite = sqlite || p == "modernc.org/sqlite"
	}
	if !sqlite {
		t.Errorf("relay does not link modernc.org/sqlite: sqlite: URLs would fail")
	}
}
