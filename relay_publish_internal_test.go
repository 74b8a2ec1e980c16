package outbox

import (
	"fmt"
	"testing"

	"github.com/outboxrelay/outbox/dialect"
)

// TestPlanRounds checks the rule that keeps per-key order in a batch: round
// i holds the i-th record of every key, so no round has two records of one
// key and a key's records go out in id order, one round after another.
func TestPlanRounds(t *testing.T) {
	row := func(shard int, key string) dialect.Row {
		r := dialect.Row{Shard: shard}
		if key != "-" {
			r.Key = []byte(key)
		}
		return r
	}
	recs := []dialect.Row{
		row(0, "a"), row(0, "b"), row(0, "a"), row(1, "a"), row(0, "-"),
		row(0, "a"), row(0, "-"), row(0, ""), row(0, ""),
	}
	p := planRounds(recs, false)
	want := "[[0 1 3 4 6 7] [2 8] [5]]"
	if got := fmt.Sprint(p.byRound); got != want {
		t.Fatalf("rounds %s, want %s", got, want)
	}
	// Keys: (0,a) (0,b) (1,a) (0,"") and two keyless records on their own.
	if p.groups != 6 {
		t.Fatalf("%d groups, want 6", p.groups)
	}
	if p.group[0] != p.group[2] || p.group[2] != p.group[5] || p.group[0] == p.group[3] || p.group[4] == p.group[6] {
		t.Fatalf("groups %v: one group per key in its shard, one per keyless record", p.group)
	}
	if len(planRounds(nil, false).byRound) != 0 {
		t.Fatal("an empty batch has no rounds")
	}
}
