package sender

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// silentServer speaks just enough SMTP to take one message, then never
// answers the final ".": the ambiguous case of RFC 1047 with a server that
// hangs rather than drops. It signals on dot when the "." arrived.
func silentServer(t *testing.T, dot chan<- struct{}) (string, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		c.Write([]byte("220 silent\r\n"))
		inData := false
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return // the client closed the connection
			}
			switch {
			case inData && line == ".\r\n":
				dot <- struct{}{}
				inData = false // and never answer
			case inData:
			case strings.HasPrefix(line, "EHLO"):
				c.Write([]byte("250-silent\r\n250 8BITMIME\r\n"))
			case strings.HasPrefix(line, "DATA"):
				c.Write([]byte("354 go on\r\n"))
				inData = true
			default:
				c.Write([]byte("250 ok\r\n"))
			}
		}
	}()
	a := ln.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port
}

// Cancelling the context (a second Ctrl-C) ends the wait for the reply to
// the final "." at once, instead of after DataTimeout, and the recipient is
// Unknown: the message may have been delivered. Without that, this test
// waits for DataTimeout (an hour) and go test fails it.
func TestSendCancelWhileWaitingForTheReply(t *testing.T) {
	dot := make(chan struct{}, 1)
	host, port := silentServer(t, dot)
	c := mustClient(t, Config{Host: host, Port: port, Security: "none", Auth: "none", HELO: "client.test",
		Timeout: 10 * time.Second, DataTimeout: time.Hour}) // without the cancel, the test times out
	cn := mustDial(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-dot
		cancel()
	}()
	res, err := cn.Send(ctx, "s@example.org", []string{"r@example.org"}, testMsg)
	if err == nil {
		t.Fatal("got no error, want one for the missing reply")
	}
	if got := res.Rcpts[0].Status; got != Unknown {
		t.Errorf("got %v, want unknown", got)
	}
	if !cn.broken {
		t.Error("the connection stays usable after a cancelled wait, want it closed")
	}
}
