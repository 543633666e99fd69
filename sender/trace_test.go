package sender

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/mailrun/mailrun/internal/smtptest"
)

// TestTraceConcurrentConnections runs four connections of one Client at
// once into a plain bytes.Buffer: under -race this fails unless the Client
// serialises the writes itself, and every line must carry its
// connection's tag, with each connection's lines in protocol order.
func TestTraceConcurrentConnections(t *testing.T) {
	opt := smtptest.Options{Auth: true, Password: "c0ncurrent-pw"}
	srv := smtptest.Start(t, opt)
	cfg := config(srv, opt)
	cfg.Auth = "plain"
	var trace bytes.Buffer // deliberately not safe for concurrent use
	cfg.Debug = &trace
	c := mustClient(t, cfg)

	const conns = 4
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		wg.Go(func() {
			cn, err := c.Dial(context.Background())
			if err != nil {
				errs <- err
				return
			}
			for j := range 3 {
				to := fmt.Sprintf("c%dm%d@example.org", i, j)
				if _, err := cn.Send(context.Background(), "s@example.org", []string{to}, testMsg); err != nil {
					errs <- err
				}
			}
			if err := cn.Close(); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	got := trace.String()
	noSecret(t, "trace", got, c)
	lineRE := regexp.MustCompile(`^\[([1-9][0-9]*)\] [CS]: `)
	perConn := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		m := lineRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("untagged trace line %q in:\n%s", l, got)
		}
		perConn[m[1]] = append(perConn[m[1]], l[len(m[0])-3:])
	}
	if len(perConn) != conns {
		t.Fatalf("got %d connection tags, want %d:\n%s", len(perConn), conns, got)
	}
	for tag, lines := range perConn {
		// Each connection's own lines keep their order: EHLO,
		// AUTH, three transactions, QUIT.
		joined := strings.Join(lines, "\n")
		last := -1
		for _, want := range []string{"C: EHLO client.test", "C: AUTH PLAIN <SMTP auth data redacted>", "C: MAIL FROM:", "C: QUIT", "S: 221 "} {
			i := strings.Index(joined[last+1:], want)
			if i < 0 {
				t.Errorf("connection [%s]: %q missing or out of order:\n%s", tag, want, joined)
				break
			}
			last += 1 + i
		}
		if n := strings.Count(joined, "C: MAIL FROM:"); n != 3 {
			t.Errorf("connection [%s]: got %d MAIL FROM lines, want 3", tag, n)
		}
	}
	if n := len(srv.Messages()); n != conns*3 {
		t.Errorf("server stored %d messages, want %d", n, conns*3)
	}
}

func TestDebugTrace(t *testing.T) {
	opt := smtptest.Options{TLS: "starttls", Auth: true, Password: "tr4ce-me-not"}
	srv := smtptest.Start(t, opt)
	cfg := config(srv, opt)
	cfg.Auth = "login"
	trace := newSyncBuffer()
	cfg.Debug = trace
	c := mustClient(t, cfg)
	cn := mustDial(t, c)
	if _, err := cn.Send(context.Background(), "s@example.org", []string{"a@example.org"}, testMsg); err != nil {
		t.Fatal(err)
	}
	if err := cn.Close(); err != nil {
		t.Fatal(err)
	}
	got := trace.String()
	for _, want := range []string{
		"C: EHLO client.test", "C: STARTTLS", "S: 220 ", "C: <SMTP auth data redacted>",
		"C: MAIL FROM:<s@example.org>", "C: RCPT TO:<a@example.org>", "C: BDAT 77 LAST",
		"C: [message, 77 bytes]", "S: 250 2.0.0", "C: QUIT", "S: 221 ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("trace lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Subject: hi") {
		t.Error("trace holds the message body")
	}
	noSecret(t, "trace", got, c)
}

func TestLMTPAuthTrace(t *testing.T) {
	opt := smtptest.Options{LMTP: true, TLS: "tls", Auth: true, Password: "lmtp-s3cret"}
	srv := smtptest.Start(t, opt)
	for _, auth := range []string{"plain", "login"} {
		cfg := config(srv, opt)
		cfg.Auth = auth
		trace := newSyncBuffer()
		cfg.Debug = trace
		c := mustClient(t, cfg)
		cn := mustDial(t, c)
		if _, err := cn.Send(context.Background(), "s@example.org", []string{"a@example.org"}, testMsg); err != nil {
			t.Fatal(err)
		}
		noSecret(t, "lmtp trace", trace.String(), c)
		// PLAIN sends its payload with the command; LOGIN answers two
		// challenges (draft-murchison-sasl-login: no initial response).
		want := map[string][]string{
			"plain": {"C: AUTH PLAIN <SMTP auth data redacted>\n", "S: 235 "},
			"login": {"C: AUTH LOGIN\n", "S: 334 <SMTP auth data redacted>\n", "C: <SMTP auth data redacted>\n", "S: 334 <SMTP auth data redacted>\n", "C: <SMTP auth data redacted>\n", "S: 235 "},
		}[auth]
		if !inOrder(trace.String(), want) {
			t.Errorf("trace lacks the redacted AUTH exchange %q:\n%s", want, trace)
		}
	}
	if srv.Deliveries("a@example.org") != 2 {
		t.Errorf("got %d deliveries, want 2", srv.Deliveries("a@example.org"))
	}
}

// TestTraceLMTPSameTracer runs one message over SMTP and one over LMTP,
// both with implicit TLS and AUTH PLAIN, and compares what the client
// said: the same lines but for EHLO and LHLO, from the greeting to QUIT,
// each tagged with its connection's number. The LMTP server's replies,
// one per recipient, are traced like any other.
func TestTraceLMTPSameTracer(t *testing.T) {
	clientLines := func(lmtp bool) (string, string) {
		opt := smtptest.Options{TLS: "tls", Auth: true, Password: "s4me-tracer", LMTP: lmtp}
		srv := smtptest.Start(t, opt)
		cfg := config(srv, opt)
		cfg.Auth = "plain"
		trace := newSyncBuffer()
		cfg.Debug = trace
		c := mustClient(t, cfg)
		cn := mustDial(t, c)
		if _, err := cn.Send(context.Background(), "s@example.org", []string{"a@example.org", "b@example.org"}, testMsg); err != nil {
			t.Fatal(err)
		}
		if err := cn.Close(); err != nil {
			t.Fatal(err)
		}
		noSecret(t, "trace", trace.String(), c)
		var client []string
		for _, l := range strings.Split(strings.TrimSuffix(trace.String(), "\n"), "\n") {
			if !strings.HasPrefix(l, "[1] C: ") && !strings.HasPrefix(l, "[1] S: ") {
				t.Errorf("line %q is not tagged [1] C: or [1] S:", l)
			}
			if strings.HasPrefix(l, "[1] C: ") {
				client = append(client, l)
			}
		}
		return strings.Join(client, "\n"), trace.String()
	}
	smtpLines, _ := clientLines(false)
	lmtpLines, lmtpTrace := clientLines(true)
	want := strings.Join([]string{
		"[1] C: EHLO client.test",
		"[1] C: AUTH PLAIN <SMTP auth data redacted>",
		"[1] C: MAIL FROM:<s@example.org> SIZE=77 BODY=8BITMIME",
		"[1] C: RCPT TO:<a@example.org>",
		"[1] C: RCPT TO:<b@example.org>",
		"[1] C: BDAT 77 LAST",
		"[1] C: [message, 77 bytes]",
		"[1] C: QUIT",
	}, "\n")
	if smtpLines != want {
		t.Errorf("SMTP client lines:\n%s\nwant:\n%s", smtpLines, want)
	}
	if wantLMTP := strings.Replace(want, "EHLO", "LHLO", 1); lmtpLines != wantLMTP {
		t.Errorf("LMTP client lines:\n%s\nwant:\n%s", lmtpLines, wantLMTP)
	}
	if !inOrder(lmtpTrace, []string{"[1] S: 220 ", "[1] S: 235 ", "[1] S: 250 2.0.0 <a@example.org> OK", "[1] S: 250 2.0.0 <b@example.org> OK", "[1] S: 221 "}) {
		t.Errorf("LMTP replies missing or out of order:\n%s", lmtpTrace)
	}
}
