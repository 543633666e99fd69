package sender

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailrun/mailrun/internal/smtptest"
)

// quietListener accepts connections on 127.0.0.1:0 and, per connection,
// writes greet (which may be empty) and then reads until the client goes
// away or 20 seconds pass, or closes at once when hangUp is set.
func quietListener(t *testing.T, greet string, hangUp bool) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { _ = ln.Close(); <-done })
	go func() {
		defer close(done)
		for range 10 { // bounded: a test dials once or twice
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			if greet != "" {
				_, _ = c.Write([]byte(greet))
			}
			if !hangUp {
				var b [512]byte
				for {
					if _, err := c.Read(b[:]); err != nil {
						break
					}
				}
			}
			_ = c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// freePort returns a port on 127.0.0.1 that nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return port
}

// TestDialUnreachable: a relay that cannot be reached (nothing listens,
// the connection closes before the greeting, no greeting within
// ConnectTimeout, an implicit-TLS handshake that never completes) is
// told by ErrUnreachable, temporary and never fatal, and gives up within
// ConnectTimeout. A relay that answered (a 421 greeting) is not
// unreachable.
func TestDialUnreachable(t *testing.T) {
	const bound = 400 * time.Millisecond
	for _, tt := range []struct {
		name     string
		port     func(t *testing.T) int
		security string
		cmd      string
		text     string // a substring of the error
		want     bool   // ErrUnreachable
	}{
		{"refused", freePort, "none", "CONNECT", "connection refused", true},
		{"closed before the greeting", func(t *testing.T) int { return quietListener(t, "", true) }, "none", "greeting", "greeting: no greeting", true},
		{"silent", func(t *testing.T) int { return quietListener(t, "", false) }, "none", "greeting", "greeting: no greeting within 400ms", true},
		{"silent starttls", func(t *testing.T) int { return quietListener(t, "", false) }, "starttls", "greeting", "no greeting within 400ms", true},
		{"silent during the implicit TLS handshake", func(t *testing.T) int { return quietListener(t, "", false) }, "tls", "CONNECT", "CONNECT:", true},
		{"busy", func(t *testing.T) int { return quietListener(t, "421 4.3.2 too busy\r\n", false) }, "none", "greeting", "greeting: 421 4.3.2 too busy", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := mustClient(t, Config{Host: "127.0.0.1", Port: tt.port(t), Security: tt.security, HELO: "client.test",
				ConnectTimeout: bound, Timeout: time.Hour}) // Timeout must not be what ends the wait
			start := time.Now()
			_, err := c.Dial(context.Background())
			el := time.Since(start)
			e := asError(t, err)
			if errors.Is(err, ErrUnreachable) != tt.want || e.Command != tt.cmd || !e.Temporary || IsFatal(err) || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("got %q (Command %q, unreachable %v, temporary %v, fatal %v), want %s %q, unreachable %v, temporary",
					err, e.Command, errors.Is(err, ErrUnreachable), e.Temporary, IsFatal(err), tt.cmd, tt.text, tt.want)
			}
			if el > bound+5*time.Second { // generous: the promise is ConnectTimeout
				t.Errorf("took %v, want about %v", el, bound)
			}
		})
	}
}

// TestDialCancelIsNotUnreachable: a dial the caller cancelled says so,
// not that the relay is down.
func TestDialCancelIsNotUnreachable(t *testing.T) {
	port := quietListener(t, "", false)
	c := mustClient(t, Config{Host: "127.0.0.1", Port: port, Security: "none", HELO: "client.test", ConnectTimeout: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Dial(ctx)
	if errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want the context's error and not ErrUnreachable", err)
	}
}

// TestDialTLSMismatch: each way of getting security wrong is fatal, not
// unreachable, and names the setting that mends it, from typed values:
// a plaintext client meets a server that starts with TLS (found by a
// ClientHello when it stays silent, or by the TLS record it sends), an
// implicit-TLS client meets a plaintext server (tls.RecordHeaderError),
// and a certificate signed by an authority the client does not know
// (x509.UnknownAuthorityError) names ca_file.
func TestDialTLSMismatch(t *testing.T) {
	const bound = time.Second
	other := smtptest.Start(t, smtptest.Options{TLS: "tls"}) // another CA
	for _, tt := range []struct {
		name   string
		opt    smtptest.Options
		port   func(t *testing.T) int // instead of the server's
		mutate func(*Config)
		cmd    string
		text   string
	}{
		{
			name:   "starttls against implicit TLS",
			opt:    smtptest.Options{TLS: "tls"},
			mutate: func(c *Config) { c.Security = "starttls" },
			cmd:    "greeting", text: "greeting: the server on port %d starts with TLS: use security: tls",
		},
		{
			name:   "none against implicit TLS",
			opt:    smtptest.Options{TLS: "tls"},
			mutate: func(c *Config) { c.Security = "none" },
			cmd:    "greeting", text: "greeting: the server on port %d starts with TLS: use security: tls",
		},
		{
			name:   "a TLS record for a greeting",
			port:   func(t *testing.T) int { return quietListener(t, "\x16\x03\x01\x00\x05hello", false) },
			mutate: func(c *Config) { c.Security = "none" },
			cmd:    "greeting", text: "greeting: the server on port %d starts with TLS: use security: tls",
		},
		{
			name:   "tls against plaintext",
			opt:    smtptest.Options{},
			mutate: func(c *Config) { c.Security = "tls" },
			cmd:    "CONNECT", text: "CONNECT: the server does not speak TLS at once: use security: starttls",
		},
		{
			name:   "tls against plaintext LMTP",
			opt:    smtptest.Options{LMTP: true},
			mutate: func(c *Config) { c.Security = "tls" },
			cmd:    "CONNECT", text: "CONNECT: the server does not speak TLS at once: use security: none",
		},
		{
			name:   "implicit TLS, unknown authority",
			opt:    smtptest.Options{TLS: "tls"},
			mutate: func(c *Config) { c.CAFile = "" },
			cmd:    "CONNECT", text: "signed by an unknown authority: set smtp.ca_file to the CA that signed the server's certificate",
		},
		{
			name:   "STARTTLS, unknown authority",
			opt:    smtptest.Options{TLS: "starttls"},
			mutate: func(c *Config) { c.CAFile = "" },
			cmd:    "STARTTLS", text: "signed by an unknown authority: set smtp.ca_file",
		},
		{
			name:   "STARTTLS, ca_file of another CA",
			opt:    smtptest.Options{TLS: "starttls"},
			mutate: func(c *Config) { c.CAFile = other.CAFile() },
			cmd:    "STARTTLS", text: "neither the system nor ca_file " + other.CAFile() + " trusts: set smtp.ca_file",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.Start(t, tt.opt)
			cfg := config(srv, tt.opt)
			cfg.ConnectTimeout, cfg.Timeout = bound, 10*time.Second
			if tt.port != nil {
				cfg.Port = tt.port(t)
			}
			tt.mutate(&cfg)
			start := time.Now()
			_, err := mustClient(t, cfg).Dial(context.Background())
			el := time.Since(start)
			e := asError(t, err)
			text := strings.Replace(tt.text, "%d", strconv.Itoa(cfg.Port), 1)
			if e.Command != tt.cmd || !IsFatal(err) || e.Temporary || errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), text) {
				t.Errorf("got %q (Command %q, fatal %v, unreachable %v), want a fatal %s error holding %q",
					err, e.Command, IsFatal(err), errors.Is(err, ErrUnreachable), tt.cmd, text)
			}
			if el > bound+5*time.Second {
				t.Errorf("took %v, want at most about %v", el, bound)
			}
			if len(srv.Messages()) != 0 {
				t.Error("a message reached the server")
			}
		})
	}
}

// TestPoolUnreachableStopsAtOnce: with the relay down, SendHooks does not
// retry each message with backoff (issue 9 saw a run of 4,000 rows
// retried for hours); it returns at once an error matching
// ErrUnreachable, the recipients Deferred, so that the caller can pause
// the whole run. Backoff is an hour: a retry would hang the test.
func TestPoolUnreachableStopsAtOnce(t *testing.T) {
	c := mustClient(t, Config{Host: "127.0.0.1", Port: freePort(t), Security: "none", HELO: "client.test"})
	p := NewPool(c, PoolConfig{Retries: 5, Backoff: time.Hour})
	t.Cleanup(func() { _ = p.Close() })
	starts := 0
	res, err := p.SendHooks(context.Background(), "s@example.org", []string{"a@example.org", "b@example.org"}, testMsg,
		Hooks{Start: func() error { starts++; return nil }})
	if !errors.Is(err, ErrUnreachable) || IsFatal(err) {
		t.Fatalf("got %v, want an error matching ErrUnreachable, not fatal", err)
	}
	if got := statuses(res); got != "a=deferred b=deferred" || res.Attempts != 1 || starts != 1 {
		t.Errorf("got %s after %d attempts, %d Start; want both deferred after 1, 1", got, res.Attempts, starts)
	}
	for _, rr := range res.Rcpts {
		if !errors.Is(rr.Err, ErrUnreachable) {
			t.Errorf("%s: Err %v does not match ErrUnreachable", rr.Addr, rr.Err)
		}
	}
}
