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
