package main

import (
	"bytes"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"
)

// tcpProxy forwards a loopback address to a database server; the tests
// stop it to make the database unreachable and start it again, on the
// same address, to bring it back.
type tcpProxy struct {
	t      *testing.T
	addr   string // 127.0.0.1:port, stable across Stop and Start
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
	// stall, when set, holds every client message containing it (and all
	// that follows on its connection) until released is closed.
	stall    []byte
	released chan struct{}
}

// StallOn holds, from now on, every client message that contains pattern
// (a statement's text) before it reaches the server, with all that follows
// on its connection, until Release: the client waits for an answer that
// does not come, as behind a frozen network.
func (p *tcpProxy) StallOn(pattern string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stall, p.released = []byte(pattern), make(chan struct{})
}

// Release lets the held messages through and stalls no more.
func (p *tcpProxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stall != nil {
		close(p.released)
		p.stall = nil
	}
}

// hold returns the channel to wait on before forwarding b, or nil.
func (p *tcpProxy) hold(b []byte) chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stall != nil && bytes.Contains(b, p.stall) {
		return p.released
	}
	return nil
}

// newTCPProxy reserves a loopback port for target without listening on it
// yet: connections are refused until Start.
func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{t: t, addr: ln.Addr().String(), target: target}
	_ = ln.Close()
	t.Cleanup(p.Stop)
	return p
}

// Start listens on the proxy's address and forwards what it accepts.
func (p *tcpProxy) Start() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may linger for a moment after Stop
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy: listening on %s again: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln, p.conns = ln, map[net.Conn]struct{}{}
	p.mu.Unlock()
	p.wg.Add(1)
	go p.accept(ln)
}

// Stop closes the listener and every connection through it: the database
// is gone for its clients.
func (p *tcpProxy) Stop() {
	p.Release()
	p.mu.Lock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *tcpProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *tcpProxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		client, err := ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil || !p.track(client, server) {
			_ = client.Close()
			if server != nil {
				_ = server.Close()
			}
			continue
		}
		p.wg.Add(2)
		go p.pipeHeld(server, client)
		go p.pipe(client, server)
	}
}

// pipeHeld copies the client's messages to the server, holding those that
// StallOn names.
func (p *tcpProxy) pipeHeld(dst, src net.Conn) {
	defer p.wg.Done()
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if wait := p.hold(buf[:n]); wait != nil {
				<-wait
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *tcpProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
}

// behindProxy returns dbURL with its host replaced by a proxy to it, and
// the proxy, not started yet (connections are refused until Start).
func behindProxy(t *testing.T, dbURL string) (string, *tcpProxy) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, u.Host)
	u.Host = proxy.addr
	return u.String(), proxy
}
