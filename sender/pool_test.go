package sender

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailrun/mailrun/internal/smtptest"
)

func newPool(t testing.TB, srv *smtptest.Server, opt smtptest.Options, pc PoolConfig) *Pool {
	t.Helper()
	c, err := New(config(srv, opt))
	if err != nil {
		t.Fatal(err)
	}
	p := NewPool(c, pc)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestPoolConcurrencyAndExactlyOnce(t *testing.T) {
	opt := smtptest.Options{TLS: "starttls"}
	srv := smtptest.Start(t, opt)
	p := newPool(t, srv, opt, PoolConfig{Concurrency: 3})
	const n = 30
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			res, err := p.Send(context.Background(), "s@example.org", []string{fmt.Sprintf("r%d@example.org", i)}, testMsg)
			if err == nil && res.Rcpts[0].Status != Delivered {
				err = fmt.Errorf("r%d: %s", i, res.Rcpts[0].Status)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if got := srv.Deliveries(fmt.Sprintf("r%d@example.org", i)); got != 1 {
			t.Errorf("r%d delivered %d times, want 1", i, got)
		}
	}
	if got := srv.MaxConcurrent(); got > 3 || got < 1 {
		t.Errorf("got %d simultaneous sessions, want 1..3", got)
	}
	if got := srv.Sessions(); got > 3 {
		t.Errorf("got %d sessions, want at most 3 (connections are reused)", got)
	}
}

func TestPoolPerConnection(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	p := newPool(t, srv, smtptest.Options{}, PoolConfig{Concurrency: 1, PerConnection: 3})
	for i := range 9 {
		if _, err := p.Send(context.Background(), "s@example.org", []string{fmt.Sprintf("r%d@example.org", i)}, testMsg); err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.Sessions(); got != 3 {
		t.Errorf("got %d sessions, want 3", got)
	}
	if got := srv.MaxConcurrent(); got != 1 {
		t.Errorf("got %d simultaneous sessions, want 1", got)
	}
}

func TestPoolRateLimit(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	p := newPool(t, srv, smtptest.Options{}, PoolConfig{Concurrency: 4, Rate: 20, Burst: 1})
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			if _, err := p.Send(context.Background(), "s@example.org", []string{fmt.Sprintf("r%d@example.org", i)}, testMsg); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// Burst 1 at 20/s: the 5th transaction cannot start before 4/20 s.
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Errorf("5 messages took %v, want at least 200ms at 20/s", el)
	}
}

func TestPoolRateLimitCancel(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	p := newPool(t, srv, smtptest.Options{}, PoolConfig{Rate: 0.001, Burst: 1})
	if _, err := p.Send(context.Background(), "s@example.org", []string{"a@example.org"}, testMsg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := p.Send(ctx, "s@example.org", []string{"b@example.org"}, testMsg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if got := statuses(res); got != "b=deferred" {
		t.Errorf("got %s, want b=deferred", got)
	}
}

func TestPoolRetries(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(*smtptest.Server)
		retries  int
		want     string
		attempts int
		sessions int
		// noChunking sends with DATA: the cases below that are about the
		// final "." differ with CHUNKING, where the message leaves first.
		noChunking bool
	}{
		{
			name:     "4xx then success",
			setup:    func(s *smtptest.Server) { s.RejectRcptTimes("b@example.org", 2, 450, "4.2.1", "busy") },
			retries:  3,
			want:     "a=delivered b=delivered",
			attempts: 3,
			sessions: 1,
		},
		{
			name:     "4xx outlives the retries",
			setup:    func(s *smtptest.Server) { s.RejectRcptTimes("b@example.org", 2, 450, "4.2.1", "busy") },
			retries:  2,
			want:     "a=delivered b=deferred(450)",
			attempts: 2,
			sessions: 1,
		},
		{
			name:     "421 redials",
			setup:    func(s *smtptest.Server) { s.FailCommand("MAIL", 1, 421, "4.3.2", "closing") },
			retries:  2,
			want:     "a=delivered b=delivered",
			attempts: 2,
			sessions: 2,
		},
		{
			name:       "dropped before the dot is retried",
			setup:      func(s *smtptest.Server) { s.DropAt("RCPT", 1) },
			retries:    2,
			want:       "a=delivered b=delivered",
			attempts:   2,
			sessions:   2,
			noChunking: true,
		},
		{
			// The message left with the group, but the server closed
			// before it answered RCPT TO, so it never reached BDAT.
			name:     "dropped before a chunked group's RCPT reply is retried",
			setup:    func(s *smtptest.Server) { s.DropAt("RCPT", 1) },
			retries:  5,
			want:     "a=delivered b=delivered",
			attempts: 2,
			sessions: 2,
		},
		{
			name:     "unknown is never retried",
			setup:    func(s *smtptest.Server) { s.DropAfterData(1) },
			retries:  5,
			want:     "a=unknown b=unknown",
			attempts: 1,
			sessions: 1,
		},
		{
			name:     "5xx is not retried",
			setup:    func(s *smtptest.Server) { s.RejectRcpt("b@example.org", 550, "5.1.1", "no such user") },
			retries:  5,
			want:     "a=delivered b=rejected(550)",
			attempts: 1,
			sessions: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.Options{})
			tt.setup(srv)
			cfg := config(srv, smtptest.Options{})
			cfg.NoChunking = tt.noChunking
			p := NewPool(mustClient(t, cfg), PoolConfig{Retries: tt.retries, Backoff: time.Millisecond})
			t.Cleanup(func() { _ = p.Close() })
			res, err := p.Send(context.Background(), "s@example.org", []string{"a@example.org", "b@example.org"}, testMsg)
			if err != nil {
				t.Fatal(err)
			}
			if got := statuses(res); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			if res.Attempts != tt.attempts {
				t.Errorf("got %d attempts, want %d", res.Attempts, tt.attempts)
			}
			if got := srv.Sessions(); got != tt.sessions {
				t.Errorf("got %d sessions, want %d", got, tt.sessions)
			}
			for _, a := range []string{"a@example.org", "b@example.org"} {
				if n := srv.Deliveries(a); n > 1 {
					t.Errorf("%s delivered %d times", a, n)
				}
			}
		})
	}
}

func TestPoolBackoffIsALowerBound(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	srv.RejectRcptTimes("a@example.org", 2, 451, "4.3.0", "later")
	p := newPool(t, srv, smtptest.Options{}, PoolConfig{Retries: 3, Backoff: 40 * time.Millisecond})
	start := time.Now()
	res, err := p.Send(context.Background(), "s@example.org", []string{"a@example.org"}, testMsg)
	if err != nil || res.Rcpts[0].Status != Delivered {
		t.Fatalf("got %v %v", statuses(res), err)
	}
	// Equal jitter: round 0 waits >= 20ms, round 1 >= 40ms.
	if el := time.Since(start); el < 60*time.Millisecond {
		t.Errorf("took %v, want at least 60ms of backoff", el)
	}
}

func TestPoolFatal(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	srv.FailCommand("MAIL", -1, 550, "5.7.1", "relay denied")
	p := newPool(t, srv, smtptest.Options{}, PoolConfig{Retries: 5, Backoff: time.Millisecond})
	res, err := p.Send(context.Background(), "s@example.org", []string{"a@example.org"}, testMsg)
	if !IsFatal(err) {
		t.Fatalf("got %v, want fatal", err)
	}
	if res.Attempts != 1 || res.Rcpts[0].Status != Deferred {
		t.Errorf("got %d attempts, %s; want 1, deferred", res.Attempts, statuses(res))
	}
}

func TestPoolGroupBatches(t *testing.T) {
	opt := smtptest.Options{MaxRecipients: 2}
	srv := smtptest.Start(t, opt)
	srv.RejectRcpt("r2@example.org", 550, "5.1.1", "no such user")
	srv.RejectRcpt("r5@example.org", 553, "5.1.3", "bad address")
	var to []string
	for i := range 8 {
		to = append(to, fmt.Sprintf("r%d@example.org", i))
	}
	p := newPool(t, srv, opt, PoolConfig{MaxRcpt: 3, Retries: 1})
	res, err := p.Send(context.Background(), "s@example.org", to, testMsg)
	if err != nil {
		t.Fatal(err)
	}
	want := "r0=delivered r1=delivered r2=rejected(550) r3=delivered r4=delivered r5=rejected(553) r6=delivered r7=delivered"
	if got := statuses(res); got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	for i, a := range to {
		if res.Rcpts[i].Addr != a {
			t.Errorf("Rcpts[%d] = %s, want %s", i, res.Rcpts[i].Addr, a)
		}
		wantN := 1
		if i == 2 || i == 5 {
			wantN = 0
		}
		if got := srv.Deliveries(a); got != wantN {
			t.Errorf("%s delivered %d times, want %d", a, got, wantN)
		}
	}
	for _, m := range srv.Messages() {
		if len(m.To) > 2 {
			t.Errorf("a transaction carried %d recipients, server limit is 2", len(m.To))
		}
	}
	// r0 r1 [r2 gets 452] | r2(550) r3 r4 | r5(553) r6 r7: the 452 moves r2
	// into the next transaction without costing it a retry.
	if res.Attempts != 3 {
		t.Errorf("got %d transactions, want 3", res.Attempts)
	}
}

func TestPoolClosed(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	p := newPool(t, srv, smtptest.Options{}, PoolConfig{})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(context.Background(), "s@example.org", []string{"a@example.org"}, testMsg); err == nil {
		t.Fatal("send after Close succeeded")
	}
}

// BenchmarkPoolSend sends a 20 KB message over 4 connections without a
// rate limit and reports messages per second. Most of its CPU goes to the
// in-process go-smtp server reading DATA a byte at a time.
func BenchmarkPoolSend(b *testing.B) { benchmarkPoolSend(b, 20<<10) }

// BenchmarkPoolSendSmall is BenchmarkPoolSend with a message of a few
// lines, so that round trips, not the server's DATA reader, set the pace.
func BenchmarkPoolSendSmall(b *testing.B) { benchmarkPoolSend(b, 0) }

func benchmarkPoolSend(b *testing.B, size int) {
	srv := smtptest.Start(b, smtptest.Options{})
	p := newPool(b, srv, smtptest.Options{}, PoolConfig{Concurrency: 4})
	line := bytes.Repeat([]byte("x"), 76)
	msg := []byte("From: a@example.org\r\nTo: b@example.org\r\nSubject: bench\r\n\r\nHello.\r\n")
	for len(msg) < size {
		msg = append(append(msg, line...), '\r', '\n')
	}
	b.SetBytes(int64(len(msg)))
	b.SetParallelism(1) // GOMAXPROCS goroutines; the pool caps connections at 4
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := p.Send(context.Background(), "s@example.org", []string{"r@example.org"}, msg)
			if err != nil || res.Rcpts[0].Status != Delivered {
				b.Errorf("send: %v", err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

func TestPoolRedialsDroppedIdleConnection(t *testing.T) {
	// With CHUNKING a group carries the message, so an idle connection is
	// checked with NOOP first; here every connection counts as idle.
	defer func(d time.Duration) { idleProbe = d }(idleProbe)
	idleProbe = 0
	for _, mode := range []string{"chunking", "pipelining", "plain"} {
		t.Run(mode, func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.Options{})
			srv.DropIdle(1)
			cfg := config(srv, smtptest.Options{})
			switch mode {
			case "pipelining":
				cfg.NoChunking = true
			case "plain":
				cfg.Port = noPipelining(t, srv)
			}
			trace := newSyncBuffer()
			cfg.Debug = trace
			p := NewPool(mustClient(t, cfg), PoolConfig{Retries: 1})
			t.Cleanup(func() { _ = p.Close() })
			for _, a := range []string{"a@example.org", "b@example.org"} {
				res, err := p.Send(context.Background(), "s@example.org", []string{a}, testMsg)
				if err != nil || res.Rcpts[0].Status != Delivered {
					t.Fatalf("%s: got %s, %v", a, statuses(res), err)
				}
				// The dead idle connection costs a redial, not an attempt.
				if res.Attempts != 1 {
					t.Errorf("%s: got %d attempts, want 1", a, res.Attempts)
				}
			}
			if got := srv.Sessions(); got != 2 {
				t.Errorf("got %d sessions, want 2", got)
			}
			// The second message found the first connection dead with its
			// MAIL FROM (pipelining, plain) or its NOOP (chunking, unless
			// its peek saw the close first), never an RSET.
			tr := trace.String()
			found := strings.Count(tr, "[1] C: MAIL FROM:") == 2 || mode == "chunking"
			if !found || strings.Contains(tr, "C: RSET") || !strings.Contains(tr, "[2] C: RCPT TO:<b@example.org>") {
				t.Errorf("trace lacks b's MAIL FROM on [1] and its RCPT on [2], or has an RSET:\n%s", tr)
			}
		})
	}
}

// TestPoolNoRsetAfterSuccess checks that a reused connection goes on
// with the next MAIL FROM after a delivered message, without RSET (RFC
// 5321 section 4.1.1.4 needs none, and relays count it against their
// limits): each message costs one write with CHUNKING, two with
// PIPELINING, and one per command without.
func TestPoolNoRsetAfterSuccess(t *testing.T) {
	for _, tt := range []struct {
		mode   string
		writes int64 // for two messages on a reused connection
	}{{"chunking", 2}, {"pipelining", 4}, {"plain", 8}} {
		t.Run(tt.mode, func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.Options{})
			cfg := config(srv, smtptest.Options{})
			setMode(t, srv, &cfg, tt.mode)
			trace := newSyncBuffer()
			cfg.Debug = trace
			p := NewPool(mustClient(t, cfg), PoolConfig{Concurrency: 1})
			t.Cleanup(func() { _ = p.Close() })
			send := func(a string) {
				t.Helper()
				res, err := p.Send(context.Background(), "s@example.org", []string{a}, testMsg)
				if err != nil || res.Rcpts[0].Status != Delivered || res.Attempts != 1 {
					t.Fatalf("%s: got %s after %d attempts, %v", a, statuses(res), res.Attempts, err)
				}
			}
			send("a@example.org")
			p.mu.Lock()
			raw := p.idle[0].cn.raw
			p.mu.Unlock()
			before := raw.writes.Load()
			send("b@example.org")
			send("c@example.org")
			if got := raw.writes.Load() - before; got != tt.writes {
				t.Errorf("got %d writes for two messages on a reused connection, want %d", got, tt.writes)
			}
			tr := trace.String()
			if strings.Contains(tr, "C: RSET") || strings.Count(tr, "[1] C: MAIL FROM:") != 3 {
				t.Errorf("want three MAIL FROM on [1] and no RSET:\n%s", tr)
			}
			if srv.Sessions() != 1 || len(srv.Messages()) != 3 {
				t.Errorf("got %d sessions and %d messages, want 1 and 3", srv.Sessions(), len(srv.Messages()))
			}
		})
	}
}

// TestPoolResetsRefusedTransaction checks that a transaction whose every
// recipient was refused is ended with RSET at once, before the
// connection is reused, so that the next message's group never follows a
// command the server may answer with 421; and that a connection that took
// maxRefusals refusals is closed (QUIT) for a new one.
func TestPoolResetsRefusedTransaction(t *testing.T) {
	for _, mode := range []string{"chunking", "pipelining", "plain"} {
		t.Run(mode, func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.Options{})
			cfg := config(srv, smtptest.Options{})
			setMode(t, srv, &cfg, mode)
			trace := newSyncBuffer()
			cfg.Debug = trace
			p := NewPool(mustClient(t, cfg), PoolConfig{Concurrency: 1})
			t.Cleanup(func() { _ = p.Close() })
			var to []string
			for i := range maxRefusals + 1 {
				a := fmt.Sprintf("gone%d@example.org", i)
				srv.RejectRcpt(a, 550, "5.1.1", "no such user")
				to = append(to, a, fmt.Sprintf("r%d@example.org", i))
			}
			for _, a := range to {
				res, err := p.Send(context.Background(), "s@example.org", []string{a}, testMsg)
				if err != nil || res.Attempts != 1 {
					t.Fatalf("%s: got %s after %d attempts, %v", a, statuses(res), res.Attempts, err)
				}
			}
			tr := trace.String()
			// Each refused transaction: its RCPT TO refused, then RSET
			// before anything else.
			if n := strings.Count(tr, "C: RSET\n"); n != maxRefusals+1 {
				t.Errorf("got %d RSET, want %d:\n%s", n, maxRefusals+1, tr)
			}
			if !inOrder(tr, []string{"[1] C: RCPT TO:<gone0@example.org>", "[1] S: 550 ", "[1] C: RSET", "[1] S: 250 ", "[1] C: MAIL FROM:"}) {
				t.Errorf("the refused transaction is not reset at once:\n%s", tr)
			}
			// The connection is retired once it took maxRefusals refusals
			// (a refused transaction costs one or two: RCPT TO, and DATA or
			// BDAT when they were pipelined), before a relay's own limit.
			refused := strings.Count(tr, "[1] S: 550 ") + strings.Count(tr, "[1] S: 554 ") + strings.Count(tr, "[1] S: 502 ")
			if !strings.Contains(tr, "[1] C: QUIT") || !strings.Contains(tr, "[2] C: MAIL FROM:") || refused < maxRefusals || refused > maxRefusals+1 {
				t.Errorf("connection [1] took %d refusals, want it retired after %d:\n%s", refused, maxRefusals, tr)
			}
			for i := range maxRefusals + 1 {
				if n := srv.Deliveries(fmt.Sprintf("r%d@example.org", i)); n != 1 {
					t.Errorf("r%d delivered %d times, want 1", i, n)
				}
			}
		})
	}
}

func TestPoolSendHooks(t *testing.T) {
	for _, opt := range []smtptest.Options{{}, {LMTP: true}} {
		t.Run(fmt.Sprintf("lmtp=%v", opt.LMTP), func(t *testing.T) {
			srv := smtptest.Start(t, opt)
			// Burst 1 at 10/s: the second message waits ~100ms for the limiter.
			p := newPool(t, srv, opt, PoolConfig{Concurrency: 1, Rate: 10, Burst: 1, Retries: 2, Backoff: time.Millisecond})
			ctx := context.Background()
			if _, err := p.Send(ctx, "s@example.org", []string{"first@example.org"}, testMsg); err != nil {
				t.Fatal(err)
			}

			srv.RejectRcptTimes("again@example.org", 1, 451, "4.3.0", "try later")
			start := time.Now()
			var starts, commits, deliveredAtCommit int
			var startAfter time.Duration
			res, err := p.SendHooks(ctx, "s@example.org", []string{"again@example.org"}, testMsg, Hooks{
				Start: func() error {
					starts++
					startAfter = time.Since(start)
					return nil
				},
				Commit: func() error {
					commits++
					deliveredAtCommit = srv.Deliveries("again@example.org")
					return nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if starts != 1 || commits != 1 {
				t.Errorf("got %d Start and %d Commit calls over %d attempts, want one each", starts, commits, res.Attempts)
			}
			if res.Attempts != 2 || res.Rcpts[0].Status != Delivered {
				t.Errorf("got %d attempts, status %v, want 2, delivered", res.Attempts, res.Rcpts[0].Status)
			}
			if deliveredAtCommit != 0 {
				t.Errorf("Commit ran after the message was delivered")
			}
			if startAfter < 50*time.Millisecond {
				t.Errorf("Start ran after %v, before the rate limiter let the message go", startAfter)
			}

			boom := errors.New("journal full")
			res, err = p.SendHooks(ctx, "s@example.org", []string{"never@example.org"}, testMsg, Hooks{Start: func() error { return boom }})
			if !errors.Is(err, boom) || res.Rcpts[0].Status != Deferred || srv.Deliveries("never@example.org") != 0 {
				t.Errorf("failing Start: got %v, status %v, %d deliveries; want %v, deferred, none", err, res.Rcpts[0].Status, srv.Deliveries("never@example.org"), boom)
			}
			res, err = p.SendHooks(ctx, "s@example.org", []string{"never@example.org"}, testMsg, Hooks{Commit: func() error { return boom }})
			if !errors.Is(err, boom) || !IsFatal(err) || res.Rcpts[0].Status != Deferred || srv.Deliveries("never@example.org") != 0 {
				t.Errorf("failing Commit: got %v (fatal %v), status %v, %d deliveries; want a fatal %v, deferred, none",
					err, IsFatal(err), res.Rcpts[0].Status, srv.Deliveries("never@example.org"), boom)
			}
			// The pool goes on with a fresh connection.
			if _, err := p.Send(ctx, "s@example.org", []string{"after@example.org"}, testMsg); err != nil || srv.Deliveries("after@example.org") != 1 {
				t.Errorf("send after a failed Commit: %v, %d deliveries", err, srv.Deliveries("after@example.org"))
			}
		})
	}
}

// A slow Commit (a journal fsync on a busy disk) must not eat the body's
// deadline: the body gets a fresh Timeout once the hook returns.
func TestPoolSlowCommit(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	cfg := config(srv, smtptest.Options{})
	cfg.Timeout = 300 * time.Millisecond
	p := NewPool(mustClient(t, cfg), PoolConfig{Concurrency: 1, Retries: 1})
	t.Cleanup(func() { _ = p.Close() })
	res, err := p.SendHooks(context.Background(), "s@example.org", []string{"r@example.org"}, testMsg, Hooks{
		Commit: func() error { time.Sleep(500 * time.Millisecond); return nil },
	})
	if err != nil || res.Rcpts[0].Status != Delivered {
		t.Fatalf("got %v, %v; want delivered after a Commit slower than Timeout", statuses(res), err)
	}
}

// A reused LMTP connection keeps its LHLO and needs no RSET after a
// delivered message: the next MAIL FROM follows at once.
func TestPoolLMTPReuseKeepsLHLO(t *testing.T) {
	for _, mode := range []string{"chunking", "pipelining", "plain"} {
		t.Run(mode, func(t *testing.T) {
			opt := smtptest.Options{LMTP: true}
			srv := smtptest.Start(t, opt)
			trace := newSyncBuffer()
			cfg := config(srv, opt)
			setMode(t, srv, &cfg, mode)
			cfg.Debug = trace
			p := NewPool(mustClient(t, cfg), PoolConfig{Concurrency: 1})
			t.Cleanup(func() { _ = p.Close() })
			for i := range 3 {
				res, err := p.Send(context.Background(), "s@example.org", []string{fmt.Sprintf("r%d@example.org", i)}, testMsg)
				if err != nil || res.Rcpts[0].Status != Delivered {
					t.Fatalf("message %d: %v, %v", i, statuses(res), err)
				}
			}
			if n := strings.Count(trace.String(), "C: LHLO"); n != 1 {
				t.Errorf("got %d LHLO for 3 messages on one connection, want 1\n%s", n, trace.String())
			}
			if n := strings.Count(trace.String(), "C: RSET"); n != 0 {
				t.Errorf("got %d RSET for 3 delivered messages on one connection, want none\n%s", n, trace.String())
			}
			if srv.Sessions() != 1 {
				t.Errorf("got %d sessions, want 1", srv.Sessions())
			}
		})
	}
}
