//go:build linux

package postfixtest

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/smtp"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailrun/mailrun/internal/servertest"
)

// TestPostfixStart checks the instance Start promises, with the standard
// library's SMTP client: STARTTLS required, AUTH required and working,
// virtual delivery to a user's Maildir, unknown users refused at RCPT TO
// with 550 5.1.1, and a listener on 127.0.0.1 only.
func TestPostfixStart(t *testing.T) {
	s := Start(t)
	if s.Host != "127.0.0.1" || s.Port == 0 || len(s.Users) != NumUsers {
		t.Fatalf("got host %q port %d and %d users, want 127.0.0.1, a port and %d users", s.Host, s.Port, len(s.Users), NumUsers)
	}
	listeners := tcpListeners(t, s.Port)
	if len(listeners) != 1 || listeners[0] != "0100007F" {
		t.Errorf("listening sockets on port %d: got addresses %q, want only 127.0.0.1 (0100007F)", s.Port, listeners)
	}

	c := dial(t, s)
	// Without TLS, even the envelope is refused (smtpd_tls_security_level
	// = encrypt).
	wantCode(t, "MAIL FROM before STARTTLS", c.Mail("news@acme.example"), 530)
	c.Close()

	c = dial(t, s)
	defer c.Close()
	startTLS(t, s, c)
	if err := c.Mail("news@acme.example"); err != nil {
		t.Fatal(err)
	}
	// Authentication is required to send, even to example.test.
	wantCode(t, "RCPT TO without AUTH", c.Rcpt(s.Users[0]), 554)
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(smtp.PlainAuth("", s.User, s.Password, s.Host)); err != nil {
		t.Fatalf("AUTH PLAIN: %v", err)
	}
	if err := c.Mail("news@acme.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(s.Users[0]); err != nil {
		t.Fatalf("RCPT TO:<%s>: %v", s.Users[0], err)
	}
	err := c.Rcpt("nosuchuser@" + Domain)
	wantCode(t, "RCPT TO an unknown user", err, 550)
	var te *textproto.Error
	if errors.As(err, &te) && !strings.HasPrefix(te.Msg, "5.1.1 ") {
		t.Errorf("RCPT TO an unknown user: got %q, want enhanced code 5.1.1", te.Msg)
	}
	wantCode(t, "RCPT TO another domain", c.Rcpt("someone@example.org"), 550)
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	const body = "From: <news@acme.example>\r\nTo: <user001@example.test>\r\nSubject: postfixtest\r\nMessage-ID: <1@acme.example>\r\n\r\nHello.\r\n"
	if _, err := w.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("end of DATA: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}

	msgs := s.Messages(t, s.Users[0])
	if len(msgs) != 1 {
		t.Fatalf("<%s>: got %d messages, want 1", s.Users[0], len(msgs))
	}
	got := string(msgs[0])
	for _, want := range []string{"Return-Path: <news@acme.example>\n", "Delivered-To: " + s.Users[0] + "\n", "Subject: postfixtest\n", "\n\nHello.\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("delivered message lacks %q:\n%s", want, got)
		}
	}
	if n := s.Counts(t); len(n) != 1 || n[s.Users[0]] != 1 {
		t.Errorf("got mailboxes %v, want only <%s> with 1 message", n, s.Users[0])
	}
	if n := s.Count(t, s.Users[1]); n != 0 {
		t.Errorf("<%s>: got %d messages, want none", s.Users[1], n)
	}
}

func dial(t *testing.T, s *Server) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(fmt.Sprintf("%s:%d", s.Host, s.Port))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	return c
}

func startTLS(t *testing.T, s *Server, c *smtp.Client) {
	t.Helper()
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", s.CAFile)
	}
	if err := c.StartTLS(&tls.Config{RootCAs: roots, ServerName: s.Host}); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
}

// wantCode fails the test unless err is an SMTP reply with code.
func wantCode(t *testing.T, what string, err error, code int) {
	t.Helper()
	var te *textproto.Error
	if !errors.As(err, &te) || te.Code != code {
		t.Errorf("%s: got %v, want a %d reply", what, err, code)
	}
}

// tcpListeners returns the local addresses, as /proc/net/tcp and tcp6
// write them, of the sockets listening on port.
func tcpListeners(t *testing.T, port int) []string {
	t.Helper()
	var addrs []string
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// sl local_address rem_address st ...; 0A is LISTEN.
			if len(fields) < 4 || fields[3] != "0A" {
				continue
			}
			host, hexPort, ok := strings.Cut(fields[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); ok && err == nil && int(p) == port {
				addrs = append(addrs, host)
			}
		}
		f.Close()
	}
	return addrs
}

// A start cut short by its deadline, wherever it is (Dovecot's socket,
// postfix check, the master's greeting), kills what it started, leaves no
// process behind, and skips the test, or fails it under CI.
func TestPostfixStartDeadline(t *testing.T) {
	if Binary() == "" || os.Geteuid() != 0 {
		t.Skip("needs postfix and root")
	}
	// 100ms usually ends in Dovecot's start, 1s in postfix check, which
	// takes two or three seconds on a fresh folder.
	for _, tc := range []struct {
		timeout     time.Duration
		ci, verdict string
	}{
		{100 * time.Millisecond, "", "skip"},
		{100 * time.Millisecond, "true", "fatal"},
		{time.Second, "true", "fatal"},
	} {
		timeout := tc.timeout
		t.Run(fmt.Sprintf("%v/CI=%s", timeout, tc.ci), func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			// Start's folder, hence every process that names it, lies
			// under this test's own.
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			r := &servertest.Recorder{TB: t, Quiet: true}
			took := r.Watch(timeout, func() { start(r, timeout) })
			if r.Verdict == "ready" {
				t.Skipf("postfix started within %v: nothing to cut short", timeout)
			}
			if r.Verdict != tc.verdict || !strings.Contains(r.Msg, "within "+timeout.String()) {
				t.Errorf("got %s %q, want %s naming the %v deadline", r.Verdict, r.Msg, tc.verdict, timeout)
			}
			// The deadline, then the reaping of what it killed.
			if took > timeout+15*time.Second {
				t.Errorf("start gave up after %v, want soon after %v", took, timeout)
			}
			if left := processesNaming(t, tmp); len(left) > 0 {
				t.Errorf("processes left behind: %q", left)
			}
		})
	}
}

// processesNaming returns the command lines, of running processes, that
// contain s.
func processesNaming(t *testing.T, s string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(cmdline), s) {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if i := strings.LastIndexByte(string(stat), ')'); err == nil && i > 0 && strings.HasPrefix(string(stat[i+1:]), " Z") {
			continue // a zombie has exited
		}
		found = append(found, strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return found
}
