package sender

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Client is a validated Config: it dials connections to one relay and is
// safe for concurrent use.
type Client struct {
	cfg Config
	tls *tls.Config
	// addr is host:port for net.Dial, with an IPv6 literal bracketed once.
	addr string
	// secrets are the forms of the password that a trace must never show.
	secrets []string
	// trace wraps cfg.Debug once for all connections; nil without Debug.
	trace *traceWriter
}

// New validates cfg, fills its defaults, loads CAFile and returns a Client.
// It does not connect. It refuses unknown security, auth or protocol
// values, CR, LF or NUL in the host, HELO name or user name, and AUTH
// without TLS unless the host is a loopback address (IsLoopback; RFC 8314
// section 3: credentials travel encrypted). Every such error is a
// *ConfigError naming the setting.
func New(cfg Config) (*Client, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	roots, err := loadRoots(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	host := trimBrackets(cfg.Host)
	c := &Client{
		cfg:     cfg,
		trace:   newTraceWriter(cfg.Debug),
		tls:     &tls.Config{ServerName: host, RootCAs: roots, MinVersion: tls.VersionTLS12},
		addr:    net.JoinHostPort(host, strconv.Itoa(cfg.Port)),
		secrets: secretForms(cfg.Username, cfg.Password),
	}
	return c, nil
}

// check refuses what no default can mend. It works on the values as
// given, before fill, so a message names what the user wrote.
func (cfg *Config) check() error {
	if cfg.Host == "" {
		return &ConfigError{Field: "host", Message: "host is empty"}
	}
	for _, f := range []struct{ field, value string }{{"host", cfg.Host}, {"helo", cfg.HELO}, {"username", cfg.Username}} {
		if strings.ContainsAny(f.value, "\r\n\x00") {
			return &ConfigError{Field: f.field, Message: f.field + " must not contain CR, LF or NUL"}
		}
	}
	// EHLO takes one domain or address literal (RFC 5321 section 4.1.1.1):
	// a space would add an argument the server may take for a parameter.
	if strings.ContainsAny(cfg.HELO, " \t") {
		return &ConfigError{Field: "helo", Message: fmt.Sprintf("helo %q must be one host name, without spaces", cfg.HELO)}
	}
	switch cfg.Protocol {
	case "", "smtp", "lmtp":
	default:
		return &ConfigError{Field: "protocol", Message: fmt.Sprintf("unknown protocol %q (want smtp or lmtp)", cfg.Protocol)}
	}
	switch cfg.Security {
	case "", "starttls", "tls", "none":
	default:
		return &ConfigError{Field: "security", Message: fmt.Sprintf("unknown security %q (want starttls, tls or none)", cfg.Security)}
	}
	switch cfg.Auth {
	case "", "auto", "plain", "login", "cram-md5", "xoauth2", "none":
	default:
		return &ConfigError{Field: "auth", Message: fmt.Sprintf("unknown auth %q (want auto, plain, login, cram-md5, xoauth2 or none)", cfg.Auth)}
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return &ConfigError{Field: "port", Message: fmt.Sprintf("invalid port %d", cfg.Port)}
	}
	return nil
}

// fill sets the defaults documented on Config and checks the rules that
// depend on them: LMTP's security and auth, and AUTH only over TLS or to
// a loopback host.
func (cfg *Config) fill() error {
	if cfg.Protocol == "" {
		cfg.Protocol = "smtp"
	}
	if cfg.Security == "" {
		cfg.Security = "starttls"
	}
	if cfg.Protocol == "lmtp" && cfg.Security == "starttls" {
		return &ConfigError{Field: "security", Message: "lmtp supports security tls or none, not starttls"}
	}
	// auto means "the best the server offers, for the login we have": no
	// login, no AUTH.
	if cfg.Auth == "" || cfg.Auth == "auto" && cfg.Username == "" {
		cfg.Auth = "none"
		if cfg.Username != "" {
			cfg.Auth = "auto"
		}
	}
	if err := cfg.checkAuth(); err != nil {
		return err
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort(cfg.Protocol, cfg.Security)
	}
	if cfg.HELO == "" {
		h, err := os.Hostname()
		if err != nil {
			return &ConfigError{Field: "helo", Message: "helo is empty and the host name is unknown", Err: err}
		}
		cfg.HELO = h
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 30 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.DataTimeout <= 0 {
		cfg.DataTimeout = 10 * time.Minute
	}
	return nil
}

// checkAuth applies the AUTH rules once Auth and Security are known.
func (cfg *Config) checkAuth() error {
	if cfg.Auth == "none" {
		return nil
	}
	switch {
	case cfg.Username == "":
		return &ConfigError{Field: "username", Message: fmt.Sprintf("auth %s needs a username and a password", cfg.Auth)}
	case cfg.Password == "":
		return &ConfigError{Field: "password", Message: fmt.Sprintf("auth %s needs a username and a password", cfg.Auth)}
	case cfg.Security == "none" && !IsLoopback(cfg.Host):
		return &ConfigError{Field: "security", Message: fmt.Sprintf("refusing AUTH without TLS to %s (security none is for loopback hosts)", cfg.Host)}
	case cfg.Protocol == "lmtp" && cfg.Auth != "plain" && cfg.Auth != "login" && cfg.Auth != "auto":
		return &ConfigError{Field: "auth", Message: fmt.Sprintf("lmtp supports auth plain, login or auto, not %s", cfg.Auth)}
	}
	return nil
}

// loadRoots returns the system's trusted CAs plus those of caFile.
func loadRoots(caFile string) (*x509.CertPool, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if caFile == "" {
		return roots, nil
	}
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return nil, &ConfigError{Field: "ca_file", Message: "cannot read ca_file", Err: err}
	}
	if !roots.AppendCertsFromPEM(pemBytes) {
		return nil, &ConfigError{Field: "ca_file", Message: fmt.Sprintf("ca_file %s: no PEM certificate found", caFile)}
	}
	return roots, nil
}

// secretForms lists every form in which a client sends the password: as
// is, base64 (LOGIN), and inside the PLAIN and XOAUTH2 payloads. A
// password shorter than 3 bytes would blank out ordinary text, so it is
// left to the structural redaction of AUTH alone.
func secretForms(user, pass string) []string {
	if len(pass) < 3 {
		return nil
	}
	b64 := base64.StdEncoding.EncodeToString
	return []string{
		pass, b64([]byte(pass)),
		b64([]byte("\x00" + user + "\x00" + pass)),
		b64([]byte(user + "\x00" + user + "\x00" + pass)),
		b64([]byte("user=" + user + "\x01auth=Bearer " + pass + "\x01\x01")),
	}
}

// DefaultPort is the port a relay listens on when Config.Port is zero: 24
// for LMTP whatever the security (RFC 2033 section 5), 465 for implicit
// TLS (RFC 8314 section 7.3), 587 for submission with STARTTLS (RFC 6409)
// and 25 for plain SMTP. Other packages call it rather than keep their
// own table.
func DefaultPort(protocol, security string) int {
	switch {
	case protocol == "lmtp":
		return 24
	case security == "tls":
		return 465
	case security == "starttls":
		return 587
	}
	return 25
}

// IsLoopback reports whether host names this machine: "localhost", any
// address of 127.0.0.0/8, or ::1, an IPv6 literal with or without its
// brackets ("[::1]"). It resolves nothing. It is the rule by which AUTH
// without TLS is allowed.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(trimBrackets(host))
	return ip != nil && ip.IsLoopback()
}

// trimBrackets removes one pair of brackets around an IPv6 literal, as
// users write it in URLs ("[::1]"); net.JoinHostPort adds them back.
func trimBrackets(host string) string {
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		return host[1 : len(host)-1]
	}
	return host
}

// String says where and how the Client sends, with the defaults New filled
// in: "smtp smtp.acme.example:587 (starttls, AUTH as news@acme.example)".
// It never holds the password.
func (c *Client) String() string {
	login := "no AUTH"
	if c.cfg.Auth != "none" {
		login = "AUTH as " + c.cfg.Username
	}
	return fmt.Sprintf("%s %s (%s, %s)", c.cfg.Protocol, c.addr, c.cfg.Security, login)
}
