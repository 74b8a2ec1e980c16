package localkafka

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Flaky makes c fail produce requests at random until stop is called:
// refusePercent of them are refused before the append with one of codes,
// drawn at random (RefuseProduce); lostAckPercent of the others are
// appended and then answered REQUEST_TIMED_OUT, as a broker whose replicas
// are slow does (the client cannot tell, and sends the batch again). The
// draws come from seed. refused and lostAcks count what was done.
func Flaky(c *kfake.Cluster, seed uint64, refusePercent, lostAckPercent int, codes ...int16) (refused, lostAcks func() int64, stop func()) {
	var (
		mu      sync.Mutex
		rng     = rand.New(rand.NewPCG(seed, seed+1))
		n       atomic.Int64
		stopped atomic.Bool
	)
	roll := func(percent int) bool {
		mu.Lock()
		defer mu.Unlock()
		return rng.IntN(100) < percent
	}
	pick := func() int16 {
		mu.Lock()
		defer mu.Unlock()
		return codes[rng.IntN(len(codes))]
	}
	c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		if stopped.Load() {
			c.DropControl()
			return nil, nil, false
		}
		c.KeepControl()
		if len(codes) == 0 || !roll(refusePercent) {
			return nil, nil, false
		}
		n.Add(1)
		return RefuseProduce(kr.(*kmsg.ProduceRequest), pick()), nil, true
	})
	h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.RequestTimedOut, Count: -1,
		When: func(kmsg.Request) bool { return roll(lostAckPercent) }})
	return n.Load, func() int64 { return int64(h.Hits()) }, func() {
		stopped.Store(true)
		h.Remove()
	}
}
