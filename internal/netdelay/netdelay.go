// Package netdelay puts a round-trip time on TCP connections on loopback,
// as a distant peer would: a Conn delays the bytes of each direction by
// half the round trip, in order, without limiting throughput. It is a delay
// line, not a pause per write: bytes written back to back all arrive one
// delay later, so pipelined requests each see only the round trip.
//
// Wrap the listener of a server (NewListener, or ListenFunc for servers that
// take a listen function, such as kfake.ListenFn): every connection it
// accepts is delayed both ways, whatever address the client dialed.
package netdelay

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Listener is a net.Listener whose accepted connections are delayed
// (see Conn). Its Addr is the wrapped listener's.
type Listener struct {
	net.Listener
	rtt      time.Duration
	accepted atomic.Int64
	down     atomic.Bool

	mu    sync.Mutex
	conns []net.Conn // accepted, to close on SetDown(true)
}

// NewListener returns ln with every connection it accepts delayed by rtt
// per round trip (rtt/2 each way).
func NewListener(ln net.Listener, rtt time.Duration) *Listener {
	return &Listener{Listener: ln, rtt: rtt}
}

// ListenFunc returns a function with the signature of net.Listen that
// listens with net.Listen and wraps the listener with NewListener.
func ListenFunc(rtt time.Duration) func(network, address string) (net.Listener, error) {
	return func(network, address string) (net.Listener, error) {
		ln, err := net.Listen(network, address)
		if err != nil {
			return nil, err
		}
		return NewListener(ln, rtt), nil
	}
}

// Accept waits for the next connection and returns it delayed (as it is
// with a zero round trip). While the listener is down (SetDown), it closes
// the connections it accepts at once and waits for the next.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.down.Load() {
			_ = c.Close()
			continue
		}
		l.accepted.Add(1)
		if l.rtt > 0 {
			c = NewConn(c, l.rtt)
		}
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
		return c, nil
	}
}

// SetDown takes the server behind the listener off the network (true):
// every connection it accepted is closed, and new ones are closed as soon
// as they are accepted, so clients see a broker that is gone; or puts it
// back (false). The server itself keeps running, with its data.
func (l *Listener) SetDown(down bool) {
	l.down.Store(down)
	if !down {
		return
	}
	l.mu.Lock()
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// Accepted returns how many connections the listener has accepted (and
// delayed) so far.
func (l *Listener) Accepted() int64 { return l.accepted.Load() }

// RTT returns the round-trip time the listener adds.
func (l *Listener) RTT() time.Duration { return l.rtt }
