package outbox

import (
	"context"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

// PublishBatchForBench publishes recs as the worker does (no database
// involved) and returns how many were published: for the benchmarks of the
// observer's and tracer's cost in package outbox_test.
func PublishBatchForBench(r *Relay, recs []dialect.Row) int {
	return r.publishBatch(context.Background(), recs).published
}

// HoldShardsForBench gives r leases on shards 0..n-1 for an hour.
func HoldShardsForBench(r *Relay, n int) {
	ls := make([]dialect.Lease, n)
	for i := range ls {
		ls[i] = dialect.Lease{Shard: i}
	}
	r.leases.acquired(ls, time.Now().Add(time.Hour))
}

// EncodeHeadersForBench encodes hs as Enqueue stores them.
func EncodeHeadersForBench(hs []Header) []byte { return encodeHeaders(hs) }
