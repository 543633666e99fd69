package mailing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailrun/mailrun/internal/smtptest"
	"github.com/mailrun/mailrun/journal"
	"github.com/mailrun/mailrun/sender"
)

// A relay that cannot be reached before any message has gone stops the
// run at once with one error, journaling nobody as failed.
func TestRelayDownAtStart(t *testing.T) {
	e := newRunEnv(t, "newsletter", smtptest.Options{}, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	replaceLine(t, filepath.Join(e.dir, "campaign.yaml"), fmt.Sprintf("  port: %d", e.srv.Port()), fmt.Sprintf("  port: %d", port))
	start := time.Now()
	sum, _, err := e.run(context.Background(), SendOptions{})
	var ae *AbortError
	if !errors.As(err, &ae) || !errors.Is(err, sender.ErrUnreachable) {
		t.Fatalf("got %v, want the run stopped because the relay cannot be reached", err)
	}
	// A promise to the user, with a generous bound: a dead relay stops the
	// run within a minute.
	if d := time.Since(start); d > time.Minute {
		t.Errorf("the run took %v to stop, want well under a minute", d)
	}
	if sum.Sent+sum.Failed+sum.Unknown != 0 {
		t.Errorf("got %+v, want nobody sent, failed or unknown", sum)
	}
	for a, en := range e.journal() {
		if en.Status == journal.Failed || en.Status == journal.Unknown || en.Status == journal.Sending {
			t.Errorf("<%s>: got %s, want deferred or nothing", a, en.Status)
		}
	}
}

// A relay that goes away in the middle of a run pauses every worker, says
// so, and the run goes on when it comes back: everybody once, nobody
// failed or unknown.
func TestRelayAwayMidRun(t *testing.T) {
	// One message per connection, and the relay goes away by refusing new
	// connections: cutting one in the middle of a transaction would test
	// the classification of a lost reply (sender's tests do), not the pause.
	e := newRunEnv(t, "newsletter", smtptest.Options{}, "  rate: 20/s\n  burst: 1\n  concurrency: 1\n  per_connection: 1\n")
	px := startProxy(t, e.srv.Addr())
	replaceLine(t, filepath.Join(e.dir, "campaign.yaml"), fmt.Sprintf("  port: %d", e.srv.Port()), fmt.Sprintf("  port: %d", px.port()))
	cut := make(chan struct{})
	go func() { // after the second message, the relay goes away for a while
		deadline := time.Now().Add(30 * time.Second)
		for len(e.srv.Messages()) < 2 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		px.refuse()
		time.Sleep(300 * time.Millisecond)
		px.restore(t)
		close(cut)
	}()
	sum, out, err := e.run(context.Background(), SendOptions{RelayPause: 100 * time.Millisecond})
	<-cut
	if err != nil {
		t.Fatalf("got %v\n%s, want the run to go on after the pause", err, out)
	}
	if !strings.Contains(out, "relay unreachable, retrying in") || !strings.Contains(out, "relay reachable again") {
		t.Errorf("got notices %q, want the pause and the return said", out)
	}
	if sum.Sent != len(newsletterAddrs) || sum.Failed+sum.Unknown != 0 {
		t.Errorf("got %+v, want all %d sent, none failed or unknown", sum, len(newsletterAddrs))
	}
	e.wantDeliveries(allOf(newsletterAddrs, 1))
}

// proxy is a loopback TCP proxy in front of a relay that a test can cut
// (refusing new connections and breaking the open ones) and restore on
// the same port.
type proxy struct {
	target string
	mu     sync.Mutex
	ln     net.Listener
	addr   string
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	p := &proxy{target: target}
	p.listen(t, "127.0.0.1:0")
	t.Cleanup(func() { p.cut(); p.wg.Wait() })
	return p
}

func (p *proxy) port() int {
	_, port, _ := net.SplitHostPort(p.addr)
	var n int
	fmt.Sscan(port, &n)
	return n
}

func (p *proxy) listen(t *testing.T, addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, b)
			p.mu.Unlock()
			p.wg.Go(func() { io.Copy(b, c); b.Close() })
			p.wg.Go(func() { io.Copy(c, b); c.Close() })
		}
	})
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// refuse closes the listener only: new connections are refused, the open
// ones go on.
func (p *proxy) refuse() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
}

func (p *proxy) restore(t *testing.T) { p.listen(t, p.addr) }

// Greylisting: every recipient is deferred once. The deferred messages wait
// for their retry without holding a worker, so 20 of them over 2
// connections finish in about one backoff, not one backoff per message.
func TestGreylistingRetriesTogether(t *testing.T) {
	e := newRunEnv(t, "newsletter", smtptest.Options{}, "  concurrency: 2\n  backoff: 2s\n")
	addrs := e.generatedAddrs(20)
	for _, a := range addrs {
		e.srv.RejectRcptTimes(a, 1, 450, "4.2.0", "greylisted, try again later")
	}
	start := time.Now()
	sum := e.mustRun(SendOptions{})
	elapsed := time.Since(start)
	if sum.Sent != 20 || sum.Deferred != 0 {
		t.Errorf("got %+v, want all 20 sent after one retry each", sum)
	}
	e.wantDeliveries(allOf(addrs, 1))
	for a, en := range e.journal() {
		if en.Status != journal.Sent {
			t.Errorf("<%s>: got %s, want sent", a, en.Status)
		}
	}
	// Waiting out one backoff per message took 10 backoffs per connection
	// here (10-20 s); together it is about one (1-2 s). The bound is
	// generous for a busy machine and still tells the two apart.
	if elapsed > 8*time.Second {
		t.Errorf("took %v, want about one backoff (2s), not one per message", elapsed)
	}
}

// A message refused for its size whose attachments alone are over the
// relay's limit would fail for everyone: the run stops after the first,
// instead of refusing every recipient one upload at a time.
func TestTooBigForEveryoneStops(t *testing.T) {
	e := newRunEnv(t, "newsletter", smtptest.Options{MaxMessageBytes: 100 << 10}, "  concurrency: 1\n")
	big := strings.Repeat("x", 200<<10)
	if err := os.WriteFile(filepath.Join(e.dir, "big.txt"), []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	runAppend(t, filepath.Join(e.dir, "campaign.yaml"), "attachments: [big.txt]\n")
	sum, _, err := e.run(context.Background(), SendOptions{})
	var ae *AbortError
	var se *sender.SizeError
	if !errors.As(err, &ae) || !errors.As(err, &se) || !strings.Contains(err.Error(), "every message carries") {
		t.Fatalf("got %v, want the run stopped: the attachments are over the relay's limit", err)
	}
	if sum.Failed != 1 || sum.Sent != 0 {
		t.Errorf("got %+v, want the first recipient failed and the run stopped", sum)
	}
	if n := len(e.srv.Messages()); n != 0 {
		t.Errorf("got %d messages, want none accepted", n)
	}
}
