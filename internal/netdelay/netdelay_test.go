package netdelay_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"

	"github.com/outboxrelay/outbox/internal/netdelay"
)

// The tests check lower bounds of latency only, and upper bounds an order
// of magnitude away from any plausible figure, so that a loaded machine
// cannot fail them.

const rtt = 20 * time.Millisecond

// listen starts a delayed listener on loopback whose connections are
// served by serve, each in a goroutine of its own; it returns the address.
func listen(t *testing.T, serve func(net.Conn)) (string, *netdelay.Listener) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := netdelay.NewListener(inner, rtt)
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String(), ln
}

// echo writes back every line it reads, one Write per line.
func echo(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			if _, werr := c.Write(line); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRoundTrip: a request and its answer take at least the round trip.
func TestRoundTrip(t *testing.T) {
	addr, ln := listen(t, echo)
	c := dial(t, addr)
	r := bufio.NewReader(c)
	for i := range 3 {
		start := time.Now()
		if _, err := c.Write([]byte("ping\n")); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadString('\n')
		took := time.Since(start)
		if err != nil || line != "ping\n" {
			t.Fatalf("round trip %d: %q, %v", i, line, err)
		}
		if took < rtt {
			t.Errorf("round trip %d took %s, want at least %s", i, took, rtt)
		}
	}
	if n := ln.Accepted(); n != 1 {
		t.Errorf("Accepted() = %d, want 1", n)
	}
	if ln.RTT() != rtt {
		t.Errorf("RTT() = %s", ln.RTT())
	}
}

// TestPipelined: requests written back to back are answered in about one
// round trip, not one round trip each. Serialized delays would take at
// least n*rtt/2 (2s here); the bound is half that, 50 round trips.
func TestPipelined(t *testing.T) {
	const n = 200
	addr, _ := listen(t, echo)
	c := dial(t, addr)
	r := bufio.NewReader(c)
	start := time.Now()
	go func() {
		for range n {
			if _, err := c.Write([]byte("req\n")); err != nil {
				return
			}
		}
	}()
	for i := range n {
		if line, err := r.ReadString('\n'); err != nil || line != "req\n" {
			t.Fatalf("answer %d: %q, %v", i, line, err)
		}
	}
	took := time.Since(start)
	t.Logf("%d pipelined round trips of %s took %s", n, rtt, took)
	if took < rtt {
		t.Errorf("took %s, want at least one round trip, %s", took, rtt)
	}
	if limit := n * rtt / 4; took >= limit {
		t.Errorf("took %s, want well under %s: the delays add up instead of overlapping", took, limit)
	}
}

// TestOrder: bytes keep their order both ways, whatever the sizes of the
// writes and reads.
func TestOrder(t *testing.T) {
	addr, _ := listen(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
	c := dial(t, addr)
	data := make([]byte, 4<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	go func() {
		for rest := data; len(rest) > 0; {
			k := min(len(rest), 1+rng.IntN(100_000))
			if _, err := c.Write(rest[:k]); err != nil {
				return
			}
			rest = rest[k:]
		}
	}()
	got := make([]byte, len(data))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the bytes came back in another order")
	}
}

// TestClose: Close ends a blocked Read and later calls; what was written
// before Close still reaches the peer, which then sees the end.
func TestClose(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := netdelay.NewListener(inner, rtt)
	defer ln.Close()
	peer := dial(t, ln.Addr().String())
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		readErr <- err
	}()
	if _, err := c.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-readErr; !errors.Is(err, net.ErrClosed) {
		t.Errorf("blocked Read: %v, want net.ErrClosed", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	got, err := io.ReadAll(peer)
	if err != nil || string(got) != "last words" {
		t.Errorf("peer read %q, %v; want the bytes written before Close, then EOF", got, err)
	}
}

// TestPeerClose: the peer's end arrives after its last bytes, as io.EOF.
func TestPeerClose(t *testing.T) {
	got := make(chan []byte, 1)
	addr, _ := listen(t, func(c net.Conn) {
		b, _ := io.ReadAll(c) // until io.EOF
		got <- b
	})
	c := dial(t, addr)
	if _, err := c.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case b := <-got:
		if string(b) != "bye" {
			t.Errorf("server read %q", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server never saw the end of the connection")
	}
}

// TestReadDeadline: a Read with nothing due ends at its deadline.
func TestReadDeadline(t *testing.T) {
	addr, _ := listen(t, func(c net.Conn) {
		if err := c.SetReadDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
			panic(err)
		}
		_, err := c.Read(make([]byte, 1))
		if errors.Is(err, os.ErrDeadlineExceeded) {
			_, _ = c.Write([]byte("timeout\n"))
		} else {
			_, _ = c.Write([]byte("other\n"))
		}
	})
	c := dial(t, addr)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "timeout\n" {
		t.Errorf("got %q, %v; want the server's Read to end at its deadline", line, err)
	}
}

// SetDown closes the connections accepted so far and those accepted while
// down; SetDown(false) lets new ones through again.
func TestSetDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := netdelay.NewListener(ln, 0)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c) }() // echo
		}
	}()
	echo := func(c net.Conn) error {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("x")); err != nil {
			return err
		}
		_, err := io.ReadFull(c, make([]byte, 1))
		return err
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	before := dial()
	if err := echo(before); err != nil {
		t.Fatalf("up: %v", err)
	}
	l.SetDown(true)
	if err := echo(before); err == nil {
		t.Error("a connection accepted before SetDown(true) still works")
	}
	if err := echo(dial()); err == nil {
		t.Error("a connection made while down works")
	}
	l.SetDown(false)
	if err := echo(dial()); err != nil {
		t.Errorf("up again: %v", err)
	}
}
