package registry

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestLimitListener: past n open connections the next is not accepted
// until one closes, and accepted connections keep the TCP connection's
// ReadFrom (net/http's path to sendfile) and CloseWrite.
func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitListener(inner, 2)
	defer ln.Close()
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	var open []net.Conn
	for range 2 {
		select {
		case c := <-accepted:
			open = append(open, c)
		case <-time.After(5 * time.Second):
			t.Fatal("the first two connections were not accepted")
		}
	}
	if _, ok := open[0].(io.ReaderFrom); !ok {
		t.Error("an accepted connection has no ReadFrom: net/http cannot use sendfile")
	}
	if _, ok := open[0].(interface{ CloseWrite() error }); !ok {
		t.Error("an accepted connection has no CloseWrite")
	}
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted past the limit of 2")
	case <-time.After(200 * time.Millisecond):
	}
	open[0].Close()
	open[0].Close() // a second Close must not free a second place
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("closing a connection did not let the waiting one in")
	}
	open[1].Close()
	ln.Close()
	if _, ok := <-accepted; ok {
		t.Error("Accept went on after Close")
	}
}
