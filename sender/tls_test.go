package sender

import (
	"context"
	"strings"
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
			if _, ok := cn.sc.TLSConnectionState(); !ok {
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

func TestLMTP(t *testing.T) {
	opt := smtptest.Options{LMTP: true}
	srv := smtptest.Start(t, opt)
	srv.LMTPStatus("full@example.org", 452, "4.2.2", "mailbox full")
	srv.LMTPStatus("gone@example.org", 550, "5.1.1", "no such mailbox")
	srv.RejectRcpt("bad@example.org", 550, "5.1.1", "unknown user")
	trace := newSyncBuffer()
	cfg := config(srv, opt)
	cfg.Debug = trace
	cn := mustDial(t, mustClient(t, cfg))
	to := []string{"ok@example.org", "full@example.org", "gone@example.org", "bad@example.org", "ok2@example.org"}
	res, err := cn.Send(context.Background(), "s@example.org", to, testMsg)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := statuses(res), "ok=delivered full=deferred(452) gone=rejected(550) bad=rejected(550) ok2=delivered"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if e := asError(t, res.Rcpts[2].Err); e.Command != "DATA" || e.Enhanced != "5.1.1" {
		t.Errorf("got %+v, want DATA 5.1.1", e)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || strings.Join(msgs[0].To, ",") != "ok@example.org,ok2@example.org" {
		t.Errorf("got %+v", msgs)
	}
	for _, want := range []string{"C: LHLO client.test", "C: MAIL FROM:<s@example.org>", "C: [message body, ", "S: 250 2.0.0 <ok@example.org>"} {
		if !strings.Contains(trace.String(), want) {
			t.Errorf("trace lacks %q:\n%s", want, trace)
		}
	}
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
		if !strings.Contains(trace.String(), "C: AUTH "+strings.ToUpper(auth)+" <SMTP auth data redacted>") {
			t.Errorf("trace lacks the redacted AUTH line:\n%s", trace)
		}
	}
	if srv.Deliveries("a@example.org") != 2 {
		t.Errorf("got %d deliveries, want 2", srv.Deliveries("a@example.org"))
	}
}

func TestLMTPDropAfterData(t *testing.T) {
	opt := smtptest.Options{LMTP: true}
	srv := smtptest.Start(t, opt)
	srv.DropAt("RCPT", 1)
	cn := mustDial(t, mustClient(t, config(srv, opt)))
	res, err := cn.Send(context.Background(), "s@example.org", []string{"a@example.org"}, testMsg)
	if err == nil || IsFatal(err) || !asError(t, err).Temporary {
		t.Fatalf("got %v, want a temporary error", err)
	}
	if got, want := statuses(res), "a=deferred"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
