package main

import (
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/outboxrelay/outbox/internal/netdelay"
)

// ---------------------------------------------------------------------------
// --broker-rtt: a distant broker on loopback

// kfakeOpts returns the options kfake starts with: with --broker-rtt, its
// listener is wrapped so that every connection it accepts is delayed.
//
// A proxy in front of kfake would not do: a Kafka client dials the
// bootstrap address only for metadata, then the address the broker
// advertises, which is kfake's own listener. Wrapping that listener puts the
// delay on every connection, whatever address the client was given.
func (e *env) kfakeOpts() []kfake.Opt {
	rtt := e.opts.brokerRTT
	if rtt <= 0 && !e.switchable {
		return nil
	}
	rtt = max(rtt, 0)
	return []kfake.Opt{kfake.ListenFn(func(network, address string) (net.Listener, error) {
		ln, err := net.Listen(network, address)
		if err != nil {
			return nil, err
		}
		d := netdelay.NewListener(ln, rtt)
		e.delayed = append(e.delayed, d) // kfake listens before NewCluster returns
		return d, nil
	})}
}

// delayedConns returns how many connections kfake accepted through the
// delaying listeners.
func (e *env) delayedConns() int64 {
	var n int64
	for _, d := range e.delayed {
		n += d.Accepted()
	}
	return n
}

// rttNote is the part of the broker's log line about --broker-rtt.
func (e *env) rttNote() string {
	if e.opts.brokerRTT <= 0 {
		return ""
	}
	return fmt.Sprintf(", %s round trip on every connection", e.opts.brokerRTT)
}

// reportDelayed logs how many connections went through the delay.
func (e *env) reportDelayed() {
	fmt.Fprintf(e.stderr, "bench: broker-rtt %s: %d connections to kfake, every one delayed\n", e.opts.brokerRTT, e.delayedConns())
}

// brokerRTTMs is --broker-rtt in milliseconds, for the result line.
func (e *env) brokerRTTMs() float64 {
	return round(float64(e.opts.brokerRTT)/float64(time.Millisecond), 3)
}

// brokerDown takes kfake off the network (down) or puts it back: its
// connections are closed and new ones refused, as a broker that is gone;
// kfake keeps its data. Only with needs.switchable.
func (e *env) brokerDown(down bool) {
	for _, d := range e.delayed {
		d.SetDown(down)
	}
}
