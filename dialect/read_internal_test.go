package dialect

import (
	"slices"
	"testing"
)

// dropWaiting leaves out exactly the later rows of waiting keys: not the
// earlier rows, not other keys or shards, not keyless rows.
func TestDropWaiting(t *testing.T) {
	recs := []Row{
		{RowID: 1, Shard: 0, Key: []byte("a"), KeyHash: 10},
		{RowID: 2, Shard: 0, Key: []byte("a"), KeyHash: 10},
		{RowID: 3, Shard: 1, Key: []byte("a"), KeyHash: 10}, // same hash, other shard
		{RowID: 4, Shard: 0, Key: []byte("b"), KeyHash: 20},
		{RowID: 5, Shard: 0, Key: nil},
		{RowID: 6, Shard: 0, Key: []byte("a"), KeyHash: 10},
	}
	got := dropWaiting(slices.Clone(recs), []waitingKey{{shard: 0, keyHash: 10, minID: 1}})
	var ids []int64
	for _, r := range got {
		ids = append(ids, r.RowID)
	}
	if want := []int64{1, 3, 4, 5}; !slices.Equal(ids, want) {
		t.Fatalf("kept %v, want %v", ids, want)
	}
	if got := dropWaiting(slices.Clone(recs), nil); len(got) != len(recs) {
		t.Fatalf("no waiting key dropped rows: kept %d of %d", len(got), len(recs))
	}
}
