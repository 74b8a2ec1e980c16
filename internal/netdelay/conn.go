package netdelay

import (
	"net"
	"os"
	"sync"
	"time"
)

// queueLen is how many reads or writes a direction holds in flight before
// the writer of the Conn (or the goroutine reading the wrapped connection)
// waits: enough for any rate loopback can carry within a round trip of
// milliseconds.
const queueLen = 4096

// readChunk is the most a delayed read takes from the wrapped connection at
// once.
const readChunk = 64 << 10

// closeGrace is how long Close lets the wrapped connection take the bytes
// still in flight once they are due.
const closeGrace = time.Second

// chunk is bytes (or the end of a direction, err) and when they are due at
// the other end.
type chunk struct {
	b   []byte
	err error
	due time.Time
}

// Conn delays the bytes of a net.Conn in both directions by the same
// one-way delay: what the peer sends reaches Read that much later than it
// reached the wrapped connection, and what Write takes reaches the wrapped
// connection that much later. Two goroutines move the bytes, one per
// direction, each in order and without waiting for the previous bytes to be
// consumed, so throughput is the wrapped connection's.
//
// Write returns once the bytes are queued, as a socket buffer would take
// them; an error of the wrapped connection shows on the Writes after it.
// Close ends Read and Write at once; the bytes already written are still
// delivered when due (within the delay and a second's grace), then the
// wrapped connection is closed. Deadlines apply to Read waiting for bytes
// and to Write waiting for room in the queue.
type Conn struct {
	net.Conn
	oneWay time.Duration

	in       chan chunk // from the wrapped connection, in arrival order
	out      chan chunk // to the wrapped connection, in write order
	closing  chan struct{}
	closed   sync.Once
	wrote    chan struct{} // closed when the write loop has ended
	readDone chan struct{} // closed when the read loop has ended

	readMu  sync.Mutex // Read's state below
	cur     chunk      // what is left of the chunk being read
	readT   *time.Timer
	writeMu sync.Mutex
	werr    error // the wrapped connection's write error, sticky
	rdl     deadline
	wdl     deadline
}

// NewConn returns c delayed by rtt per round trip: rtt/2 each way. It
// starts the two goroutines that move the bytes; Close ends them.
func NewConn(c net.Conn, rtt time.Duration) *Conn {
	d := &Conn{Conn: c, oneWay: rtt / 2, in: make(chan chunk, queueLen), out: make(chan chunk, queueLen),
		closing: make(chan struct{}), wrote: make(chan struct{}), readDone: make(chan struct{}),
		readT: time.NewTimer(time.Hour), rdl: makeDeadline(), wdl: makeDeadline()}
	d.readT.Stop()
	go d.readLoop()
	go d.writeLoop()
	return d
}

// readLoop reads the wrapped connection as fast as it delivers and queues
// what it read, stamped with when Read may return it; the error that ends
// it is queued last.
func (d *Conn) readLoop() {
	defer close(d.readDone)
	buf := make([]byte, readChunk)
	for {
		n, err := d.Conn.Read(buf)
		due := time.Now().Add(d.oneWay)
		if n > 0 && !d.queue(d.in, chunk{b: append([]byte(nil), buf[:n]...), due: due}) {
			return
		}
		if err != nil {
			d.queue(d.in, chunk{err: err, due: due})
			return
		}
	}
}

// queue puts ch on q unless the Conn is closed first.
func (d *Conn) queue(q chan chunk, ch chunk) bool {
	select {
	case q <- ch:
		return true
	case <-d.closing:
		return false
	}
}

// Read returns bytes the peer sent at least the one-way delay ago, in
// order.
func (d *Conn) Read(p []byte) (int, error) {
	d.readMu.Lock()
	defer d.readMu.Unlock()
	if d.isClosed() {
		return 0, net.ErrClosed
	}
	for len(d.cur.b) == 0 && d.cur.err == nil {
		select {
		case d.cur = <-d.in:
		case <-d.closing:
			return 0, net.ErrClosed
		case <-d.rdl.wait():
			return 0, os.ErrDeadlineExceeded
		}
	}
	if wait := time.Until(d.cur.due); wait > 0 {
		d.readT.Reset(wait)
		select {
		case <-d.readT.C:
		case <-d.closing:
			d.readT.Stop()
			return 0, net.ErrClosed
		case <-d.rdl.wait():
			d.readT.Stop()
			return 0, os.ErrDeadlineExceeded
		}
	}
	if len(d.cur.b) == 0 {
		return 0, d.cur.err // sticky, like the wrapped connection's
	}
	n := copy(p, d.cur.b)
	d.cur.b = d.cur.b[n:]
	return n, nil
}

// Write queues a copy of p for the wrapped connection, due the one-way
// delay from now.
func (d *Conn) Write(p []byte) (int, error) {
	if d.isClosed() {
		return 0, net.ErrClosed
	}
	if err := d.writeErr(); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	ch := chunk{b: append([]byte(nil), p...), due: time.Now().Add(d.oneWay)}
	select {
	case d.out <- ch:
		return len(p), nil
	case <-d.closing:
		return 0, net.ErrClosed
	case <-d.wdl.wait():
		return 0, os.ErrDeadlineExceeded
	}
}

// writeLoop writes each queued chunk to the wrapped connection when it is
// due; after Close it delivers what is queued, then closes the wrapped
// connection.
func (d *Conn) writeLoop() {
	defer close(d.wrote)
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case ch := <-d.out:
			d.send(t, ch)
		case <-d.closing:
			for {
				select {
				case ch := <-d.out:
					d.send(t, ch)
				default:
					return
				}
			}
		}
	}
}

// send waits until ch is due and writes it, unless an earlier write failed.
func (d *Conn) send(t *time.Timer, ch chunk) {
	if d.writeErr() != nil {
		return // dropped, as the peer is gone
	}
	if wait := time.Until(ch.due); wait > 0 {
		t.Reset(wait)
		<-t.C
	}
	if _, err := d.Conn.Write(ch.b); err != nil {
		d.writeMu.Lock()
		d.werr = err
		d.writeMu.Unlock()
	}
}

func (d *Conn) writeErr() error {
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	return d.werr
}

func (d *Conn) isClosed() bool {
	select {
	case <-d.closing:
		return true
	default:
		return false
	}
}

// Close ends Read and Write, delivers the bytes already written (they are
// due within the one-way delay), closes the wrapped connection and waits
// for both goroutines. Closing twice returns net.ErrClosed.
func (d *Conn) Close() error {
	first := false
	d.closed.Do(func() {
		first = true
		close(d.closing)
	})
	if !first {
		return net.ErrClosed
	}
	// A peer that stopped reading must not hold Close forever.
	_ = d.Conn.SetWriteDeadline(time.Now().Add(d.oneWay + closeGrace))
	<-d.wrote
	err := d.Conn.Close()
	<-d.readDone
	return err
}

// SetDeadline sets the read and write deadlines.
func (d *Conn) SetDeadline(t time.Time) error {
	d.rdl.set(t)
	d.wdl.set(t)
	return nil
}

// SetReadDeadline sets how long Read waits for bytes that are due.
func (d *Conn) SetReadDeadline(t time.Time) error {
	d.rdl.set(t)
	return nil
}

// SetWriteDeadline sets how long Write waits for room in the queue.
func (d *Conn) SetWriteDeadline(t time.Time) error {
	d.wdl.set(t)
	return nil
}
