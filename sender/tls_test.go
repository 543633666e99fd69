package sender

import (
	"context"
	"testing"

	"github.com/mailrun/mailrun/internal/smtptest"
)

func TestTLSModes(t *testing.T) {
	tests := []struct {
		name   string
		opt    smtptest.Options
		mutate func(*Config)
		// wantCmd, when set, is the Command of the expected fatal dial error.
		wantCmd string
	}{
		{name: "starttls with ca_file", opt: smtptest.Options{TLS: "starttls"}},
		{name: "implicit tls with ca_file", opt: smtptest.Options{TLS: "tls"}},
		{
			name: "no downgrade when server lacks STARTTLS",
			opt:  smtptest.Options{},
			mutate: func(c *Config) {
				c.Security = "starttls"
			},
			wantCmd: "STARTTLS",
		},
		{
			name:    "starttls with an untrusted certificate",
			opt:     smtptest.Options{TLS: "starttls"},
			mutate:  func(c *Config) { c.CAFile = "" },
			wantCmd: "STARTTLS",
		},
		{
			name:    "implicit tls with an untrusted certificate",
			opt:     smtptest.Options{TLS: "tls"},
			mutate:  func(c *Config) { c.CAFile = "" },
			wantCmd: "CONNECT",
		},
		{
			name:    "implicit tls against a plaintext server",
			opt:     smtptest.Options{},
			mutate:  func(c *Config) { c.Security = "tls" },
			wantCmd: "CONNECT",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.Start(t, tt.opt)
			cfg := config(srv, tt.opt)
			if tt.mutate != nil {
				tt.mutate(&cfg)
			}
			c := mustClient(t, cfg)
			cn, err := c.Dial(context.Background())
			if tt.wantCmd != "" {
				if err == nil {
					_ = cn.Close()
					t.Fatal("dial succeeded, want a fatal error")
				}
				e := asError(t, err)
				if !IsFatal(err) || e.Temporary || e.Command != tt.wantCmd {
					t.Fatalf("got %+v (%v), want a fatal %s error", e, err, tt.wantCmd)
				}
				if len(srv.Messages()) != 0 {
					t.Fatal("a message reached the server")
				}
				return
			}
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer cn.Close()
			if cn.tlsConn == nil || !cn.tlsConn.ConnectionState().HandshakeComplete {
				t.Fatal("connection is not TLS")
			}
			if _, err := cn.Send(context.Background(), "s@example.org", []string{"a@example.org"}, testMsg); err != nil {
				t.Fatal(err)
			}
			if srv.Deliveries("a@example.org") != 1 {
				t.Fatal("message not delivered")
			}
		})
	}
}
