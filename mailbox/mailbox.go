package mailbox

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config says where a mailbox is and how to log in. The zero values of the
// optional fields are useful: Security "" means "tls", Port 0 means the
// protocol's well-known port for that security, Mailbox "" means INBOX.
type Config struct {
	// Protocol is "imap" or "pop3".
	Protocol string
	Host     string
	// Port 0 means 993/143 for IMAP and 995/110 for POP3 (implicit TLS or not).
	Port int
	// Security is "tls" (implicit TLS, RFC 8314, the default), "starttls"
	// (RFC 2595; never falls back to plaintext) or "none" (loopback hosts only).
	Security string
	// CAFile is an optional PEM file of CAs trusted in addition to the system's.
	CAFile   string
	Username string
	// Password is the secret itself; it never appears in errors.
	Password string
	// Mailbox is the IMAP folder to read; POP3 has only one. Default INBOX.
	Mailbox string
	// Timeout bounds dialling and each command; zero means 60s.
	Timeout time.Duration
}

// Item is one message in a mailbox listing.
type Item struct {
	// ID is stable for the session: the IMAP UID or the POP3 UIDL.
	ID string
	// Size is the message size in octets as the server reports it.
	Size int
}

// Mailbox is an open session with a bounce mailbox. Implementations are not
// safe for concurrent use: a bounce run reads one message at a time.
type Mailbox interface {
	// List returns the messages present when it is called, oldest first.
	List(ctx context.Context) ([]Item, error)
	// Fetch returns the raw RFC 5322 bytes of one message without marking it
	// as read.
	Fetch(ctx context.Context, id string) ([]byte, error)
	// Delete removes one message. For POP3 the removal only becomes final
	// when Close sends QUIT (RFC 1939 section 6).
	Delete(ctx context.Context, id string) error
	// Move moves one message into another folder, creating the folder when
	// it is missing. POP3 has no folders and returns ErrNotSupported.
	Move(ctx context.Context, id, mailbox string) error
	// Close ends the session; for POP3 it commits deletions with QUIT.
	Close() error
}

// ErrNotSupported is returned by operations a protocol cannot do, such as
// Move over POP3.
var ErrNotSupported = errors.New("not supported by this protocol")

// Open connects, secures the connection and logs in. Its errors name the
// host, port and user but never the password.
func Open(ctx context.Context, cfg Config) (Mailbox, error) {
	cfg, err := normalise(cfg)
	if err != nil {
		return nil, err
	}
	switch cfg.Protocol {
	case "imap":
		return openIMAP(ctx, cfg)
	case "pop3":
		return openPOP3(ctx, cfg)
	}
	// normalise already rejected other protocols.
	return nil, fmt.Errorf("mailbox: unknown protocol %q", cfg.Protocol)
}

// ConfigError is a setting of Config that Open refuses before connecting.
// Field names the setting as the campaign file does ("host", "port",
// "protocol", "security", "username", "password", "mailbox").
type ConfigError struct {
	Field, Message string
}

func (e *ConfigError) Error() string { return "mailbox: " + e.Field + ": " + e.Message }

// Check reports the first setting of cfg that Open would refuse, as a
// *ConfigError, without connecting: what check says of a bounces section
// is then exactly what bounces will do.
func Check(cfg Config) error {
	_, err := normalise(cfg)
	return err
}

// ports are the well-known ports by protocol and security (RFC 8314
// section 7, RFC 2595).
var ports = map[string]map[string]int{
	"imap": {"tls": 993, "starttls": 143, "none": 143},
	"pop3": {"tls": 995, "starttls": 110, "none": 110},
}

// normalise fills defaults and refuses unsafe or malformed settings before any
// connection is made.
func normalise(cfg Config) (Config, error) {
	cfg.Protocol = strings.ToLower(strings.TrimSpace(cfg.Protocol))
	cfg.Security = strings.ToLower(strings.TrimSpace(cfg.Security))
	if cfg.Security == "" {
		cfg.Security = "tls"
	}
	// An IPv6 literal may come with brackets ("[::1]"); the dial and the
	// TLS server name want it without.
	cfg.Host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(cfg.Host), "["), "]")
	if cfg.Host == "" {
		return cfg, &ConfigError{"host", "empty"}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Mailbox == "" {
		cfg.Mailbox = "INBOX"
	}
	// CR, LF or NUL would let a configuration value inject protocol commands.
	for _, f := range []struct{ name, v string }{{"host", cfg.Host}, {"username", cfg.Username}, {"password", cfg.Password}, {"mailbox", cfg.Mailbox}} {
		if strings.ContainsAny(f.v, "\r\n\x00") {
			return cfg, &ConfigError{f.name, "contains CR, LF or NUL"}
		}
	}
	byProto, ok := ports[cfg.Protocol]
	if !ok {
		return cfg, &ConfigError{"protocol", fmt.Sprintf("%q: want imap or pop3", cfg.Protocol)}
	}
	def, ok := byProto[cfg.Security]
	if !ok {
		return cfg, &ConfigError{"security", fmt.Sprintf("%q: want tls, starttls or none", cfg.Security)}
	}
	if cfg.Port == 0 {
		cfg.Port = def
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return cfg, &ConfigError{"port", fmt.Sprintf("%d out of range", cfg.Port)}
	}
	// A password in clear text is only acceptable when it never leaves the
	// machine.
	if cfg.Security == "none" && !isLoopback(cfg.Host) {
		return cfg, &ConfigError{"security", fmt.Sprintf("none refused for non-loopback host %s: use tls or starttls", cfg.Host)}
	}
	return cfg, nil
}

// isLoopback is sender.IsLoopback's rule (a leaf cannot import it):
// localhost, 127.0.0.0/8 and ::1 (normalise has taken off the brackets).
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (cfg Config) addr() string {
	return net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
}

// tlsConfig trusts the system roots plus CAFile, and checks the certificate
// against Host.
func (cfg Config) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
	if cfg.CAFile == "" {
		return tc, nil
	}
	pem, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("mailbox: read ca_file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("mailbox: ca_file %s holds no PEM certificate", cfg.CAFile)
	}
	tc.RootCAs = pool
	return tc, nil
}

// dial opens the TCP connection and, for implicit TLS, completes the
// handshake, all within ctx and the configured timeout.
func (cfg Config) dial(ctx context.Context) (net.Conn, *tls.Config, error) {
	tc, err := cfg.tlsConfig()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	d := net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", cfg.addr())
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: dial: %w", cfg.Protocol, cfg.addr(), err)
	}
	if cfg.Security != "tls" {
		return conn, tc, nil
	}
	tconn := tls.Client(conn, tc)
	if err := tconn.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("%s %s: tls handshake: %w", cfg.Protocol, cfg.addr(), err)
	}
	return tconn, tc, nil
}
