package sender

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailrun/mailrun/internal/smtptest"
)

// testMsg is a small valid message.
var testMsg = []byte("From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nHello.\r\n.leading dot\r\n")

// config returns a Config for srv with the matching security and CA.
func config(srv *smtptest.Server, opt smtptest.Options) Config {
	cfg := Config{
		Host: srv.Host(), Port: srv.Port(), HELO: "client.test", Auth: "none",
		Security: "none", Timeout: 10 * time.Second, DataTimeout: 10 * time.Second,
	}
	switch opt.TLS {
	case "starttls", "tls":
		cfg.Security = opt.TLS
		cfg.CAFile = srv.CAFile()
	}
	if opt.LMTP {
		cfg.Protocol = "lmtp"
	}
	if opt.Auth {
		cfg.Auth = "auto"
		cfg.Username, cfg.Password = srv.Username(), srv.Password()
	}
	return cfg
}

// setMode shapes cfg for one transaction mode: "chunking" (the server's
// default), "pipelining" (NoChunking) or "plain" (through noPipelining,
// which hides PIPELINING and so CHUNKING too).
func setMode(t *testing.T, srv *smtptest.Server, cfg *Config, mode string) {
	t.Helper()
	switch mode {
	case "chunking":
	case "pipelining":
		cfg.NoChunking = true
	case "plain":
		cfg.Port = noPipelining(t, srv)
	default:
		t.Fatalf("unknown mode %q", mode)
	}
}

func mustClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func mustDial(t *testing.T, c *Client) *Conn {
	t.Helper()
	cn, err := c.Dial(context.Background())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = cn.Close() })
	return cn
}

// statuses renders a Result compactly: "a=Delivered b=Rejected(550)".
func statuses(r *Result) string {
	var b strings.Builder
	for i, rr := range r.Rcpts {
		if i > 0 {
			b.WriteByte(' ')
		}
		name, _, _ := strings.Cut(rr.Addr, "@")
		fmt.Fprintf(&b, "%s=%s", name, rr.Status)
		if rr.Reply.Code != 0 && rr.Status != Delivered {
			fmt.Fprintf(&b, "(%d)", rr.Reply.Code)
		}
	}
	return b.String()
}

func asError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got error %T %v, want *Error", err, err)
	}
	return e
}

// noSecret fails the test if s holds the password in any form a client
// sends it.
func noSecret(t *testing.T, what, s string, c *Client) {
	t.Helper()
	if c.cfg.Password == "" {
		t.Fatal("test has no password to look for")
	}
	for _, sec := range c.secrets {
		if strings.Contains(s, sec) {
			t.Errorf("%s contains the password (form %q):\n%s", what, sec, s)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a trace.
type syncBuffer struct {
	mu chan struct{}
	b  bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.String()
}

// inOrder reports whether s holds every string of want, in that order.
func inOrder(s string, want []string) bool {
	for _, w := range want {
		i := strings.Index(s, w)
		if i < 0 {
			return false
		}
		s = s[i+len(w):]
	}
	return true
}
