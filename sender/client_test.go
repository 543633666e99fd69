package sender

import (
	"strings"
	"testing"
)

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" means success
	}{
		{"ok defaults", Config{Host: "smtp.example.org"}, ""},
		{"no host", Config{}, "host is empty"},
		{"bad security", Config{Host: "h", Security: "ssl"}, `unknown security "ssl"`},
		{"bad auth", Config{Host: "h", Auth: "digest"}, `unknown auth "digest"`},
		{"bad protocol", Config{Host: "h", Protocol: "esmtp"}, `unknown protocol "esmtp"`},
		{"auth without tls to remote", Config{Host: "smtp.example.org", Security: "none", Auth: "plain", Username: "u", Password: "p"}, "refusing AUTH without TLS"},
		{"auth without tls to loopback", Config{Host: "127.0.0.1", Security: "none", Auth: "plain", Username: "u", Password: "p"}, ""},
		{"auth without tls to localhost", Config{Host: "localhost", Security: "none", Username: "u", Password: "p"}, ""},
		{"auth without password", Config{Host: "h", Auth: "login", Username: "u"}, "needs a username and a password"},
		{"crlf in helo", Config{Host: "h", HELO: "x\r\nMAIL FROM:<a@b>"}, "must not contain CR"},
		{"missing ca file", Config{Host: "h", CAFile: "/nonexistent/ca.pem"}, "ca_file"},
		{"lmtp starttls", Config{Host: "h", Protocol: "lmtp", Security: "starttls"}, "lmtp supports security"},
		{"lmtp cram", Config{Host: "127.0.0.1", Protocol: "lmtp", Security: "none", Auth: "cram-md5", Username: "u", Password: "p"}, "lmtp supports auth"},
		{"bad port", Config{Host: "h", Port: 70000}, "invalid port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got error %v, want none", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	tests := []struct {
		cfg      Config
		port     int
		security string
		auth     string
	}{
		{Config{Host: "h"}, 587, "starttls", "none"},
		{Config{Host: "h", Security: "tls"}, 465, "tls", "none"},
		{Config{Host: "h", Security: "none"}, 25, "none", "none"},
		{Config{Host: "h", Username: "u", Password: "p"}, 587, "starttls", "auto"},
		{Config{Host: "h", Protocol: "lmtp", Security: "none"}, 24, "none", "none"},
	}
	for _, tt := range tests {
		c := mustClient(t, tt.cfg)
		if c.cfg.Port != tt.port || c.cfg.Security != tt.security || c.cfg.Auth != tt.auth {
			t.Errorf("%+v: got port %d security %s auth %s, want %d %s %s", tt.cfg, c.cfg.Port, c.cfg.Security, c.cfg.Auth, tt.port, tt.security, tt.auth)
		}
		if c.cfg.HELO == "" {
			t.Errorf("%+v: HELO not defaulted", tt.cfg)
		}
	}
}
