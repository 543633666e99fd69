package mailbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mailrun/mailrun/internal/dovecottest"
	"github.com/mailrun/mailrun/mailbox"
)

// msg builds a small message whose body has lines that need POP3
// byte-stuffing, so RETR's dot-unstuffing is exercised.
func msg(n int) []byte {
	return fmt.Appendf(nil, "From: a@example.org\r\nTo: b@example.org\r\nSubject: test %d\r\nMessage-ID: <m%d@example.org>\r\n\r\nline one\r\n.starts with a dot\r\n..two dots\r\n.\r\nend %d\r\n", n, n, n)
}

func open(t *testing.T, cfg mailbox.Config) mailbox.Mailbox {
	t.Helper()
	mb, err := mailbox.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return mb
}

func list(t *testing.T, mb mailbox.Mailbox) []mailbox.Item {
	t.Helper()
	items, err := mb.List(context.Background())
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	return items
}

func TestIMAP(t *testing.T) {
	srv := dovecottest.Start(t)
	for _, security := range []string{"tls", "starttls", "none"} {
		t.Run(security, func(t *testing.T) {
			ctx := context.Background()
			base := len(srv.Messages(t, ""))
			processed := len(srv.Messages(t, "Processed"))
			for i := range 3 {
				srv.Deliver(t, msg(i))
			}
			mb := open(t, srv.Config("imap", security))
			items := list(t, mb)
			if got, want := len(items), base+3; got != want {
				t.Fatalf("got %d messages, want %d", got, want)
			}
			last := items[len(items)-3:]
			for i, it := range last {
				raw, err := mb.Fetch(ctx, it.ID)
				if err != nil {
					t.Fatalf("fetch %s: %v", it.ID, err)
				}
				if !bytes.Equal(raw, msg(i)) {
					t.Errorf("fetch %s: got %q, want %q", it.ID, raw, msg(i))
				}
				if it.Size != len(msg(i)) {
					t.Errorf("size of %s: got %d, want %d", it.ID, it.Size, len(msg(i)))
				}
			}
			if err := mb.Move(ctx, last[0].ID, "Processed"); err != nil {
				t.Fatalf("move: %v", err)
			}
			if err := mb.Delete(ctx, last[1].ID); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if got, want := len(list(t, mb)), base+1; got != want {
				t.Errorf("after move and delete: got %d messages, want %d", got, want)
			}
			if err := mb.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			if got, want := len(srv.Messages(t, "Processed")), processed+1; got != want {
				t.Errorf("Processed holds %d messages, want %d", got, want)
			}
			inbox := srv.Messages(t, "")
			if got, want := len(inbox), base+1; got != want {
				t.Errorf("inbox holds %d messages, want %d", got, want)
			}
			// The untouched message must still be there and unchanged.
			if !bytes.Equal(inbox[len(inbox)-1], msg(2)) && !bytes.Contains(bytes.Join(inbox, nil), msg(2)) {
				t.Errorf("message 2 is gone from the inbox")
			}
		})
	}
}

func TestPOP3(t *testing.T) {
	srv := dovecottest.Start(t)
	for _, security := range []string{"tls", "starttls", "none"} {
		t.Run(security, func(t *testing.T) {
			ctx := context.Background()
			base := len(srv.Messages(t, ""))
			for i := range 3 {
				srv.Deliver(t, msg(i))
			}
			mb := open(t, srv.Config("pop3", security))
			items := list(t, mb)
			if got, want := len(items), base+3; got != want {
				t.Fatalf("got %d messages, want %d", got, want)
			}
			last := items[len(items)-3:]
			for i, it := range last {
				raw, err := mb.Fetch(ctx, it.ID)
				if err != nil {
					t.Fatalf("fetch %s: %v", it.ID, err)
				}
				if !bytes.Equal(raw, msg(i)) {
					t.Errorf("fetch %s: got %q, want %q", it.ID, raw, msg(i))
				}
				if it.Size != len(msg(i)) {
					t.Errorf("size of %s: got %d, want %d", it.ID, it.Size, len(msg(i)))
				}
			}
			if err := mb.Move(ctx, last[0].ID, "Processed"); !errors.Is(err, mailbox.ErrNotSupported) {
				t.Errorf("move: got %v, want ErrNotSupported", err)
			}
			for _, it := range last[:2] {
				if err := mb.Delete(ctx, it.ID); err != nil {
					t.Fatalf("delete: %v", err)
				}
			}
			// Before QUIT the deletion is not visible to another session
			// reading the Maildir: nothing is committed yet.
			if got, want := len(srv.Messages(t, "")), base+3; got != want {
				t.Errorf("before QUIT the maildir holds %d messages, want %d", got, want)
			}
			if err := mb.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			inbox := srv.Messages(t, "")
			if got, want := len(inbox), base+1; got != want {
				t.Fatalf("after QUIT the maildir holds %d messages, want %d", got, want)
			}
			if !bytes.Contains(bytes.Join(inbox, nil), msg(2)) {
				t.Errorf("the undeleted message is gone")
			}
			// Leave the box empty for the next subtest.
			mb = open(t, srv.Config("pop3", security))
			for _, it := range list(t, mb) {
				if err := mb.Delete(ctx, it.ID); err != nil {
					t.Fatal(err)
				}
			}
			if err := mb.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A session dropped without QUIT must not delete anything (RFC 1939 section 6).
func TestPOP3NoQuitNoDelete(t *testing.T) {
	srv := dovecottest.Start(t)
	srv.Deliver(t, msg(1))
	cfg := srv.Config("pop3", "tls")
	ctx, cancel := context.WithCancel(context.Background())
	mb := open(t, cfg)
	items := list(t, mb)
	if err := mb.Delete(ctx, items[0].ID); err != nil {
		t.Fatal(err)
	}
	// Cancelling an operation in flight poisons the connection: the next
	// command fails and QUIT never reaches the server.
	cancel()
	if _, err := mb.Fetch(ctx, items[0].ID); !errors.Is(err, context.Canceled) {
		t.Errorf("fetch after cancel: got %v, want context.Canceled", err)
	}
	_ = mb.Close()
	if got := len(srv.Messages(t, "")); got != 1 {
		t.Errorf("got %d messages, want 1: DELE without QUIT must not delete", got)
	}
}

func TestWrongPassword(t *testing.T) {
	srv := dovecottest.Start(t)
	for _, proto := range []string{"imap", "pop3"} {
		for _, security := range []string{"tls", "starttls"} {
			t.Run(proto+"/"+security, func(t *testing.T) {
				// Dovecot delays repeated failures from one IP by seconds;
				// in parallel the delays overlap.
				t.Parallel()
				cfg := srv.Config(proto, security)
				cfg.Password = "Wr0ng-Secret-XYZ"
				_, err := mailbox.Open(context.Background(), cfg)
				if err == nil {
					t.Fatal("open with a wrong password: got nil error")
				}
				msg := err.Error()
				if strings.Contains(msg, cfg.Password) || strings.Contains(msg, srv.Password) {
					t.Errorf("error reveals the password: %s", msg)
				}
				if !strings.Contains(msg, cfg.Username) || !strings.Contains(strings.ToLower(msg), "login") {
					t.Errorf("error %q should name the login and the user", msg)
				}
			})
		}
	}
}

func TestUntrustedCertificate(t *testing.T) {
	srv := dovecottest.Start(t)
	for _, proto := range []string{"imap", "pop3"} {
		for _, security := range []string{"tls", "starttls"} {
			t.Run(proto+"/"+security, func(t *testing.T) {
				cfg := srv.Config(proto, security)
				cfg.CAFile = "" // only the system roots: the test certificate is unknown
				if _, err := mailbox.Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "certificate") {
					t.Errorf("got %v, want a certificate error", err)
				}
			})
		}
	}
}

func TestConfigRefused(t *testing.T) {
	tests := []struct {
		name string
		cfg  mailbox.Config
		want string
	}{
		{"none on remote host", mailbox.Config{Protocol: "imap", Host: "mail.example.org", Security: "none"}, "loopback"},
		{"unknown protocol", mailbox.Config{Protocol: "smtp", Host: "127.0.0.1"}, "protocol"},
		{"unknown security", mailbox.Config{Protocol: "pop3", Host: "127.0.0.1", Security: "ssl"}, "security"},
		{"CRLF in user", mailbox.Config{Protocol: "pop3", Host: "127.0.0.1", Username: "a\r\nDELE 1"}, "CR, LF"},
		{"CRLF in password", mailbox.Config{Protocol: "pop3", Host: "127.0.0.1", Password: "x\nQUIT"}, "CR, LF"},
		{"empty host", mailbox.Config{Protocol: "imap"}, "host"},
		{"missing ca_file", mailbox.Config{Protocol: "imap", Host: "127.0.0.1", Port: 1, CAFile: "/nonexistent/ca.pem"}, "ca_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mailbox.Open(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "QUIT") {
				t.Errorf("error echoes the password: %v", err)
			}
		})
	}
}

// An IPv6 literal is taken with or without brackets, as sender takes it:
// loopback for security none, and dialled as [::1]:port.
func TestCheckIPv6Host(t *testing.T) {
	for _, host := range []string{"::1", "[::1]"} {
		cfg, err := mailbox.NormaliseForTest(mailbox.Config{Protocol: "imap", Host: host, Security: "none"})
		if err != nil {
			t.Fatalf("%s: got %v, want loopback accepted", host, err)
		}
		if cfg != "[::1]:143" {
			t.Errorf("%s: got address %q, want [::1]:143", host, cfg)
		}
	}
	if err := mailbox.Check(mailbox.Config{Protocol: "imap", Host: "[2001:db8::1]", Security: "none"}); err == nil {
		t.Error("got security none accepted for a remote IPv6 host, want it refused")
	}
}
