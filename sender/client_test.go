package sender

import (
	"errors"
	"io/fs"
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
		{"space in helo", Config{Host: "h", HELO: "mail er.example"}, "without spaces"},
		// auto means the best AUTH the server offers for the login we
		// have: no login, no AUTH.
		{"auto without username", Config{Host: "h", Auth: "auto"}, ""},
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

// TestConfigErrorField checks that every refusal of New is a *ConfigError
// naming the setting as the campaign file spells it.
func TestConfigErrorField(t *testing.T) {
	for _, tt := range []struct {
		cfg   Config
		field string
	}{
		{Config{}, "host"},
		{Config{Host: "h\r\n"}, "host"},
		{Config{Host: "h", HELO: "x\ny"}, "helo"},
		{Config{Host: "h", Username: "u\x00"}, "username"},
		{Config{Host: "h", Protocol: "esmtp"}, "protocol"},
		{Config{Host: "h", Security: "ssl"}, "security"},
		{Config{Host: "h", Auth: "digest"}, "auth"},
		{Config{Host: "h", Port: -1}, "port"},
		{Config{Host: "h", Protocol: "lmtp", Security: "starttls"}, "security"},
		{Config{Host: "h", Auth: "plain", Password: "p"}, "username"},
		{Config{Host: "h", Auth: "plain", Username: "u"}, "password"},
		{Config{Host: "smtp.example.org", Security: "none", Username: "u", Password: "p"}, "security"},
		{Config{Host: "::1", Protocol: "lmtp", Security: "none", Auth: "xoauth2", Username: "u", Password: "p"}, "auth"},
		{Config{Host: "h", CAFile: "/nonexistent/ca.pem"}, "ca_file"},
		{Config{Host: "h", CAFile: "client_test.go"}, "ca_file"},
	} {
		_, err := New(tt.cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%+v: got %v, want a *ConfigError", tt.cfg, err)
			continue
		}
		if ce.Field != tt.field || !strings.HasPrefix(err.Error(), "smtp: ") || ce.Message == "" {
			t.Errorf("%+v: got field %q, error %q; want field %q and an \"smtp: \" message", tt.cfg, ce.Field, err, tt.field)
		}
	}
	_, err := New(Config{Host: "h", CAFile: "/nonexistent/ca.pem"})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v, want it to wrap fs.ErrNotExist", err)
	}
}

func TestDefaultPort(t *testing.T) {
	for _, tt := range []struct {
		protocol, security string
		want               int
	}{
		{"smtp", "starttls", 587},
		{"smtp", "tls", 465},
		{"smtp", "none", 25},
		{"lmtp", "none", 24},
		{"lmtp", "tls", 24},
		{"lmtp", "starttls", 24},
	} {
		if got := DefaultPort(tt.protocol, tt.security); got != tt.want {
			t.Errorf("DefaultPort(%q, %q) = %d, want %d", tt.protocol, tt.security, got, tt.want)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LocalHost": true, "127.0.0.1": true, "127.8.9.10": true,
		"::1": true, "[::1]": true, "[127.0.0.1]": true,
		"": false, "localhost.example.org": false, "128.0.0.1": false, "10.0.0.1": false,
		"::2": false, "[::1": false, "::1]": false, "[[::1]]": false, "example.org": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestNewIPv6Host checks that an IPv6 literal works with or without
// brackets: one pair in the dial address, none in the TLS server name,
// and AUTH without TLS to "[::1]" is loopback.
func TestNewIPv6Host(t *testing.T) {
	for _, tt := range []struct {
		cfg      Config
		addr, sn string
	}{
		{Config{Host: "::1", Security: "none", Auth: "plain", Username: "u", Password: "p"}, "[::1]:25", "::1"},
		{Config{Host: "[::1]", Security: "none", Auth: "plain", Username: "u", Password: "p"}, "[::1]:25", "::1"},
		{Config{Host: "[2001:db8::1]", Security: "tls"}, "[2001:db8::1]:465", "2001:db8::1"},
		{Config{Host: "smtp.example.org"}, "smtp.example.org:587", "smtp.example.org"},
	} {
		c := mustClient(t, tt.cfg)
		if c.addr != tt.addr || c.tls.ServerName != tt.sn {
			t.Errorf("%q: got addr %q, server name %q; want %q, %q", tt.cfg.Host, c.addr, c.tls.ServerName, tt.addr, tt.sn)
		}
	}
}

// String names the relay with the defaults New filled in, and never the
// password.
func TestClientString(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{Host: "smtp.acme.example", Username: "news", Password: "s3cret-pw", HELO: "h"}, "smtp smtp.acme.example:587 (starttls, AUTH as news)"},
		{Config{Host: "smtp.acme.example", Security: "tls", HELO: "h"}, "smtp smtp.acme.example:465 (tls, no AUTH)"},
		{Config{Host: "127.0.0.1", Protocol: "lmtp", Security: "none", HELO: "h"}, "lmtp 127.0.0.1:24 (none, no AUTH)"},
		{Config{Host: "[::1]", Port: 2525, Security: "none", HELO: "h"}, "smtp [::1]:2525 (none, no AUTH)"},
	} {
		c, err := New(tt.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.String(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
		if strings.Contains(c.String(), "s3cret") {
			t.Errorf("got %q, which shows the password", c.String())
		}
	}
}
