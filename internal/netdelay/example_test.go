package netdelay_test

import (
	"bufio"
	"fmt"
	"net"
	"time"

	"github.com/outboxrelay/outbox/internal/netdelay"
)

func Example() {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	ln := netdelay.NewListener(inner, 10*time.Millisecond)
	defer ln.Close()
	go func() { // an echo server behind a 10ms round trip
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		_, _ = c.Write([]byte(line))
	}()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprint(c, "hello\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	fmt.Print(line)
	fmt.Println("at least one round trip:", time.Since(start) >= 10*time.Millisecond)
	// Output:
	// hello
	// at least one round trip: true
}
