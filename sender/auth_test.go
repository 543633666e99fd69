package sender

import (
	"context"
	"strings"
	"testing"

	"github.com/mailrun/mailrun/internal/smtptest"
)

func TestAuthMechanisms(t *testing.T) {
	tests := []struct {
		auth  string
		tls   string
		mechs []string
	}{
		{"plain", "starttls", nil},
		{"login", "starttls", nil},
		{"cram-md5", "starttls", nil},
		{"xoauth2", "starttls", nil},
		{"auto", "starttls", []string{"PLAIN", "LOGIN"}},
		{"auto", "tls", []string{"PLAIN"}},
		{"plain", "", nil}, // loopback without TLS is allowed
	}
	for _, tt := range tests {
		t.Run(tt.auth+"/"+tt.tls+"/"+strings.Join(tt.mechs, ","), func(t *testing.T) {
			opt := smtptest.Options{TLS: tt.tls, Auth: true, Password: "s3cr3t-Pa55", Mechanisms: tt.mechs}
			srv := smtptest.Start(t, opt)
			cfg := config(srv, opt)
			cfg.Auth = tt.auth
			trace := newSyncBuffer()
			cfg.Debug = trace
			c := mustClient(t, cfg)
			cn := mustDial(t, c)
			if _, err := cn.Send(context.Background(), "s@example.org", []string{"a@example.org"}, testMsg); err != nil {
				t.Fatal(err)
			}
			if srv.Deliveries("a@example.org") != 1 {
				t.Fatal("message not delivered")
			}
			_ = cn.Close()
			noSecret(t, "trace", trace.String(), c)
			if !strings.Contains(trace.String(), "235 ") {
				t.Errorf("trace lacks the AUTH success reply:\n%s", trace)
			}
		})
	}
}

func TestWrongPassword(t *testing.T) {
	for _, auth := range []string{"plain", "login", "cram-md5", "xoauth2", "auto"} {
		t.Run(auth, func(t *testing.T) {
			opt := smtptest.Options{TLS: "starttls", Auth: true, Password: "right-horse-battery"}
			srv := smtptest.Start(t, opt)
			cfg := config(srv, opt)
			cfg.Auth = auth
			cfg.Password = "wrong-horse-battery"
			trace := newSyncBuffer()
			cfg.Debug = trace
			c := mustClient(t, cfg)
			_, err := c.Dial(context.Background())
			if err == nil {
				t.Fatal("dial succeeded with a wrong password")
			}
			e := asError(t, err)
			if !IsFatal(err) || e.Command != "AUTH" || e.Code != 535 || e.Enhanced != "5.7.8" {
				t.Errorf("got %+v (%v), want fatal AUTH 535 5.7.8", e, err)
			}
			noSecret(t, "error", err.Error(), c)
			noSecret(t, "trace", trace.String(), c)
			if len(srv.Messages()) != 0 {
				t.Error("a message reached the server")
			}
		})
	}
}

// TestPickMechanism pins the choice of auth auto and the refusal of a
// mechanism the server does not offer.
func TestPickMechanism(t *testing.T) {
	all := []string{"LOGIN", "CRAM-MD5", "PLAIN", "XOAUTH2"}
	for _, tt := range []struct {
		auth      string
		offered   []string
		encrypted bool
		want      string // mechanism name, "" for a fatal AUTH error
	}{
		{"auto", all, true, "PLAIN"},
		{"auto", all, false, "CRAM-MD5"},
		{"auto", []string{"LOGIN", "PLAIN"}, false, "PLAIN"},
		{"auto", []string{"LOGIN", "XOAUTH2"}, true, "LOGIN"},
		{"auto", []string{"XOAUTH2"}, true, ""},
		{"auto", nil, true, ""},
		{"plain", all, true, "PLAIN"},
		{"login", all, true, "LOGIN"},
		{"cram-md5", all, true, "CRAM-MD5"},
		{"xoauth2", all, true, "XOAUTH2"},
		{"plain", []string{"LOGIN"}, true, ""},
	} {
		c := mustClient(t, Config{Host: "127.0.0.1", Security: "none", Auth: tt.auth, Username: "u", Password: "p"})
		m, e := c.pickMechanism(tt.offered, tt.encrypted)
		switch {
		case tt.want == "" && (e == nil || !IsFatal(e) || e.Command != "AUTH"):
			t.Errorf("%s of %v: got %v, want a fatal AUTH error", tt.auth, tt.offered, e)
		case tt.want != "" && e != nil:
			t.Errorf("%s of %v: got %v, want %s", tt.auth, tt.offered, e, tt.want)
		case tt.want != "":
			if name, _ := m.start(); name != tt.want {
				t.Errorf("%s of %v (TLS %v): got %s, want %s", tt.auth, tt.offered, tt.encrypted, name, tt.want)
			}
		}
	}
}

// TestAuthWithoutTLSToLoopback runs every mechanism in plaintext to
// 127.0.0.1, which New allows, and auto picks CRAM-MD5 there, keeping the
// password off the wire.
func TestAuthWithoutTLSToLoopback(t *testing.T) {
	for _, auth := range []string{"auto", "plain", "login", "cram-md5", "xoauth2"} {
		t.Run(auth, func(t *testing.T) {
			opt := smtptest.Options{Auth: true, Password: "l00pback-only"}
			srv := smtptest.Start(t, opt)
			cfg := config(srv, opt)
			cfg.Auth = auth
			trace := newSyncBuffer()
			cfg.Debug = trace
			c := mustClient(t, cfg)
			cn := mustDial(t, c)
			if _, err := cn.Send(context.Background(), "s@example.org", []string{"a@example.org"}, testMsg); err != nil {
				t.Fatal(err)
			}
			want := strings.ToUpper(auth)
			if auth == "auto" {
				want = "CRAM-MD5"
			}
			if !strings.Contains(trace.String(), "C: AUTH "+want) {
				t.Errorf("trace lacks AUTH %s:\n%s", want, trace)
			}
			noSecret(t, "trace", trace.String(), c)
		})
	}
}
