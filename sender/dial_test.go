package sender

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mailrun/mailrun/internal/smtptest"
)

// TestDialSteps fails each step of the dial against the real server and
// checks that the error names the step, carries the reply, is fatal or
// temporary as it should be, and that the socket was closed: the server
// sees every connection end.
func TestDialSteps(t *testing.T) {
	tests := []struct {
		name   string
		opt    smtptest.Options
		setup  func(*smtptest.Server)
		mutate func(*Config)
		// want: Command, Code, Enhanced, and whether fatal; a fatal error
		// is never temporary, and the others all are.
		cmd      string
		code     int
		enhanced string
		fatal    bool
		trace    string // a line the trace must hold
	}{
		{
			name:  "greeting refused",
			setup: func(s *smtptest.Server) { s.FailCommand("GREETING", 1, 554, "5.7.1", "no service for you") },
			cmd:   "greeting", code: 554, enhanced: "5.7.1", fatal: true,
			trace: "S: 554 5.7.1 no service for you",
		},
		{
			name:  "greeting busy",
			setup: func(s *smtptest.Server) { s.FailCommand("GREETING", 1, 421, "4.3.2", "too busy") },
			cmd:   "greeting", code: 421, enhanced: "4.3.2",
		},
		{
			name:  "EHLO refused",
			setup: func(s *smtptest.Server) { s.FailCommand("EHLO", 1, 550, "5.7.1", "not you") },
			cmd:   "EHLO", code: 550, enhanced: "5.7.1", fatal: true,
			trace: "C: EHLO client.test",
		},
		{
			name:  "EHLO deferred",
			setup: func(s *smtptest.Server) { s.FailCommand("EHLO", 1, 451, "4.3.0", "later") },
			cmd:   "EHLO", code: 451, enhanced: "4.3.0",
		},
		{
			name:  "EHLO dropped",
			setup: func(s *smtptest.Server) { s.DropAt("EHLO", 1) },
			cmd:   "EHLO",
		},
		{
			name:  "LHLO refused",
			opt:   smtptest.Options{LMTP: true},
			setup: func(s *smtptest.Server) { s.FailCommand("EHLO", 1, 550, "5.7.1", "not you") },
			cmd:   "LHLO", code: 550, enhanced: "5.7.1", fatal: true,
			trace: "C: LHLO client.test",
		},
		{
			name:   "STARTTLS not offered",
			mutate: func(c *Config) { c.Security = "starttls" },
			cmd:    "STARTTLS", fatal: true,
		},
		{
			name:   "STARTTLS with an untrusted certificate",
			opt:    smtptest.Options{TLS: "starttls"},
			mutate: func(c *Config) { c.CAFile = "" },
			cmd:    "STARTTLS", fatal: true,
			trace: "S: 220 2.0.0 Ready to start TLS",
		},
		{
			name:   "implicit TLS with an untrusted certificate",
			opt:    smtptest.Options{TLS: "tls"},
			mutate: func(c *Config) { c.CAFile = "" },
			cmd:    "CONNECT", fatal: true,
		},
		{
			name:   "AUTH refused",
			opt:    smtptest.Options{TLS: "starttls", Auth: true},
			mutate: func(c *Config) { c.Password = "not-the-password" },
			cmd:    "AUTH", code: 535, enhanced: "5.7.8", fatal: true,
			trace: "C: AUTH PLAIN <SMTP auth data redacted>",
		},
		{
			name:   "AUTH not offered",
			opt:    smtptest.Options{TLS: "starttls"},
			mutate: func(c *Config) { c.Auth, c.Username, c.Password = "plain", "user", "secret" },
			cmd:    "AUTH", fatal: true,
		},
		{
			name:   "AUTH mechanism not offered",
			opt:    smtptest.Options{TLS: "starttls", Auth: true, Mechanisms: []string{"LOGIN"}},
			mutate: func(c *Config) { c.Auth = "cram-md5" },
			cmd:    "AUTH", fatal: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.Start(t, tt.opt)
			if tt.setup != nil {
				tt.setup(srv)
			}
			cfg := config(srv, tt.opt)
			if tt.mutate != nil {
				tt.mutate(&cfg)
			}
			trace := newSyncBuffer()
			cfg.Debug = trace
			cn, err := mustClient(t, cfg).Dial(context.Background())
			if err == nil {
				_ = cn.Close()
				t.Fatal("dial succeeded, want an error")
			}
			e := asError(t, err)
			if e.Command != tt.cmd || e.Code != tt.code || e.Enhanced != tt.enhanced {
				t.Errorf("got %q %d %q (%v), want %q %d %q", e.Command, e.Code, e.Enhanced, err, tt.cmd, tt.code, tt.enhanced)
			}
			if IsFatal(err) != tt.fatal || e.Temporary == tt.fatal {
				t.Errorf("got fatal %v, temporary %v (%v), want fatal %v", IsFatal(err), e.Temporary, err, tt.fatal)
			}
			// Each of these relays greeted: none is unreachable.
			if errors.Is(err, ErrUnreachable) {
				t.Errorf("got %v matching ErrUnreachable from a relay that greeted", err)
			}
			if tt.trace != "" && !strings.Contains(trace.String(), tt.trace) {
				t.Errorf("trace lacks %q:\n%s", tt.trace, trace)
			}
			if srv.Sessions() != 1 {
				t.Errorf("got %d connections, want 1", srv.Sessions())
			}
			if !srv.WaitClosed(10 * time.Second) {
				t.Error("the failed dial left its socket open")
			}
		})
	}
}

// TestDialConnectRefused dials a port nobody listens on.
func TestDialConnectRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	c := mustClient(t, Config{Host: "127.0.0.1", Port: port, Security: "none", HELO: "client.test", Timeout: 10 * time.Second})
	_, err = c.Dial(context.Background())
	e := asError(t, err)
	if e.Command != "CONNECT" || !e.Temporary || IsFatal(err) || e.hasReply() || !errors.Is(err, ErrUnreachable) {
		t.Errorf("got %+v (%v), want a temporary CONNECT error without a reply, matching ErrUnreachable", e, err)
	}
}

// TestDialHELOFallback: an SMTP server that does not know EHLO gets HELO
// and is then spoken to one command at a time.
func TestDialHELOFallback(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	srv.FailCommand("EHLO", 1, 502, "5.5.1", "EHLO not implemented")
	cfg := config(srv, smtptest.Options{})
	trace := newSyncBuffer()
	cfg.Debug = trace
	cn := mustDial(t, mustClient(t, cfg))
	if cn.pipelining || cn.chunking || cn.eightBit {
		t.Errorf("got pipelining %v, chunking %v, 8bitmime %v after HELO, want none", cn.pipelining, cn.chunking, cn.eightBit)
	}
	res, err := cn.Send(context.Background(), "s@example.org", []string{"a@example.org"}, testMsg)
	if err != nil || res.Rcpts[0].Status != Delivered {
		t.Fatalf("got %s, %v", statuses(res), err)
	}
	if !inOrder(trace.String(), []string{"C: EHLO client.test\n", "S: 502 ", "C: HELO client.test\n", "S: 250 ", "C: MAIL FROM:<s@example.org>\n"}) {
		t.Errorf("trace lacks the HELO fallback:\n%s", trace)
	}
}

// silentPeer accepts one connection on 127.0.0.1, greets it, and never
// answers: asked is closed once the client's EHLO has arrived, and closed
// receives the peer's read error once the client has closed its end (EOF)
// or after 10 seconds.
func silentPeer(t *testing.T) (port int, asked chan struct{}, closed chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	asked, closed = make(chan struct{}), make(chan error, 1)
	done := make(chan struct{})
	t.Cleanup(func() { _ = ln.Close(); <-done })
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			closed <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		_, _ = io.WriteString(c, "220 silent.test ESMTP\r\n")
		if _, err := r.ReadString('\n'); err != nil {
			closed <- err
			return
		}
		close(asked)
		_, err = r.ReadByte()
		closed <- err
	}()
	return ln.Addr().(*net.TCPAddr).Port, asked, closed
}

// TestDialSilentServer: a server that never answers EHLO is given up, by
// the Timeout or at once by a cancelled ctx, temporarily, and the socket
// is closed.
func TestDialSilentServer(t *testing.T) {
	for _, tt := range []struct {
		name    string
		timeout time.Duration
		cancel  bool
		want    error
	}{
		{"timeout", 200 * time.Millisecond, false, os.ErrDeadlineExceeded},
		{"cancel", time.Hour, true, context.Canceled}, // without the cancel, go test times out
	} {
		t.Run(tt.name, func(t *testing.T) {
			port, asked, closed := silentPeer(t)
			c := mustClient(t, Config{Host: "127.0.0.1", Port: port, Security: "none", HELO: "client.test", Timeout: tt.timeout})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				go func() {
					select {
					case <-asked:
					case <-time.After(10 * time.Second):
					}
					cancel()
				}()
			}
			_, err := c.Dial(ctx)
			e := asError(t, err)
			if e.Command != "EHLO" || !e.Temporary || IsFatal(err) || !errors.Is(err, tt.want) {
				t.Errorf("got %+v (%v), want a temporary EHLO error wrapping %v", e, err, tt.want)
			}
			if err := <-closed; !errors.Is(err, io.EOF) {
				t.Errorf("the peer read %v, want EOF: the socket was left open", err)
			}
		})
	}
}

// TestDialIPv6 dials ::1 written with and without brackets, with AUTH
// and security none (allowed to loopback), and with implicit TLS, whose
// certificate names ::1. It skips where the machine has no IPv6 loopback.
func TestDialIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	_ = ln.Close()
	for _, tt := range []struct {
		host string
		opt  smtptest.Options
	}{
		{"::1", smtptest.Options{IPv6: true, Auth: true}},
		{"[::1]", smtptest.Options{IPv6: true, Auth: true}},
		{"[::1]", smtptest.Options{IPv6: true, TLS: "tls"}},
	} {
		t.Run(tt.host+"/"+tt.opt.TLS, func(t *testing.T) {
			srv := smtptest.Start(t, tt.opt)
			cfg := config(srv, tt.opt)
			cfg.Host = tt.host
			if tt.opt.Auth {
				cfg.Auth = "plain"
			}
			cn := mustDial(t, mustClient(t, cfg))
			res, err := cn.Send(context.Background(), "s@example.org", []string{"a@example.org"}, testMsg)
			if err != nil || res.Rcpts[0].Status != Delivered {
				t.Fatalf("got %s, %v", statuses(res), err)
			}
		})
	}
}

// TestDialSTARTTLSInjection: bytes that follow the 220 to STARTTLS came
// in plaintext and must not be taken for replies over TLS (the "response
// injection" a man in the middle can try); the dial stops, fatally, and
// closes the socket. go-smtp cannot be made to misbehave so, hence the
// scripted peer.
func TestDialSTARTTLSInjection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed, done := make(chan error, 1), make(chan struct{})
	t.Cleanup(func() { _ = ln.Close(); <-done })
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			closed <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		_, _ = io.WriteString(c, "220 peer.test ESMTP\r\n")
		for range 3 { // EHLO, STARTTLS, then the client's close
			line, err := r.ReadString('\n')
			if err != nil {
				closed <- err
				return
			}
			switch {
			case strings.HasPrefix(line, "EHLO "):
				_, _ = io.WriteString(c, "250-peer.test\r\n250 STARTTLS\r\n")
			case line == "STARTTLS\r\n":
				_, _ = io.WriteString(c, "220 go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n")
			}
		}
		closed <- errors.New("the client went on talking")
	}()
	c := mustClient(t, Config{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, Security: "starttls", HELO: "client.test", Timeout: 10 * time.Second})
	_, err = c.Dial(context.Background())
	if e := asError(t, err); e.Command != "STARTTLS" || !IsFatal(err) {
		t.Errorf("got %+v (%v), want a fatal STARTTLS error", e, err)
	}
	if err := <-closed; !errors.Is(err, io.EOF) {
		t.Errorf("the peer read %v, want EOF", err)
	}
}
