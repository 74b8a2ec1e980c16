package main

import (
	"net"
	"sync"
	"sync/atomic"
)

// flightProxy is a TCP proxy on loopback in front of a database server that
// counts round trips: a "server flight" starts each time the server sends
// after the client has sent something since the server last sent. A client
// message that gets no answer (MySQL's COM_STMT_CLOSE) therefore makes no
// flight of its own, and pipelined client messages answered together make
// one. The count is global over all proxied connections; measure with
// nothing else talking through the proxy.
type flightProxy struct {
	ln      net.Listener
	target  string
	flights atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// startFlightProxy listens on a free loopback port and forwards every
// connection to target (host:port).
func startFlightProxy(target string) (*flightProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &flightProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients connect to.
func (p *flightProxy) Addr() string { return p.ln.Addr().String() }

// Flights returns the number of server flights so far.
func (p *flightProxy) Flights() int64 { return p.flights.Load() }

// Close stops the proxy and closes every connection through it.
func (p *flightProxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil // refuse connections accepted from now on
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *flightProxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		if p.conns == nil {
			return false // closed
		}
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *flightProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		if !p.track(client, true) || !p.track(server, true) {
			_ = client.Close()
			_ = server.Close()
			return
		}
		var clientSent atomic.Bool
		p.wg.Add(2)
		go func() { // client -> server
			defer p.wg.Done()
			p.pipe(server, client, func() { clientSent.Store(true) })
		}()
		go func() { // server -> client
			defer p.wg.Done()
			p.pipe(client, server, func() {
				if clientSent.Swap(false) {
					p.flights.Add(1)
				}
			})
		}()
	}
}

// pipe copies src to dst, calling seen before forwarding each read, until
// either side closes; then it closes both.
func (p *flightProxy) pipe(dst, src net.Conn, seen func()) {
	defer func() {
		_ = dst.Close()
		_ = src.Close()
		p.track(dst, false)
		p.track(src, false)
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			// Count before forwarding: once the client has the answer, the
			// flight is already counted.
			seen()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // EOF, or the other side closed
			return
		}
	}
}
