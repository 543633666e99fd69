package sender

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Client is a validated Config: it dials connections to one relay and is
// safe for concurrent use.
type Client struct {
	cfg      Config
	tls      *tls.Config
	authType gomail.SMTPAuthType
	addr     string
	// secrets are the forms of the password that a trace must never show.
	secrets []string
	// trace wraps cfg.Debug once for all connections; nil without Debug.
	trace *traceWriter
}

// New validates cfg, fills its defaults, loads CAFile and returns a Client.
// It does not connect. It refuses unknown security, auth or protocol
// values, CR or LF in the HELO name or user name, and AUTH without TLS
// unless the host is a loopback address (RFC 8314 section 3: credentials
// travel encrypted).
func New(cfg Config) (*Client, error) {
	if cfg.Host == "" {
		return nil, errors.New("smtp: host is empty")
	}
	if strings.ContainsAny(cfg.Host+cfg.HELO+cfg.Username, "\r\n\x00") {
		return nil, errors.New("smtp: host, helo and username must not contain CR, LF or NUL")
	}
	switch cfg.Protocol {
	case "":
		cfg.Protocol = "smtp"
	case "smtp", "lmtp":
	default:
		return nil, fmt.Errorf("smtp: unknown protocol %q (want smtp or lmtp)", cfg.Protocol)
	}
	switch cfg.Security {
	case "":
		cfg.Security = "starttls"
	case "starttls", "tls", "none":
	default:
		return nil, fmt.Errorf("smtp: unknown security %q (want starttls, tls or none)", cfg.Security)
	}
	if cfg.Protocol == "lmtp" && cfg.Security == "starttls" {
		return nil, errors.New("smtp: lmtp supports security tls or none, not starttls")
	}
	c := &Client{}
	switch cfg.Auth {
	case "":
		cfg.Auth = "none"
		if cfg.Username != "" {
			cfg.Auth = "auto"
		}
	case "auto", "plain", "login", "cram-md5", "xoauth2", "none":
	default:
		return nil, fmt.Errorf("smtp: unknown auth %q (want auto, plain, login, cram-md5, xoauth2 or none)", cfg.Auth)
	}
	if cfg.Auth != "none" {
		if cfg.Username == "" || cfg.Password == "" {
			return nil, fmt.Errorf("smtp: auth %s needs a username and a password", cfg.Auth)
		}
		if cfg.Security == "none" && !isLoopback(cfg.Host) {
			return nil, fmt.Errorf("smtp: refusing AUTH without TLS to %s (security none is for loopback hosts)", cfg.Host)
		}
		if cfg.Protocol == "lmtp" && cfg.Auth != "plain" && cfg.Auth != "login" && cfg.Auth != "auto" {
			return nil, fmt.Errorf("smtp: lmtp supports auth plain, login or auto, not %s", cfg.Auth)
		}
	}
	if err := c.authType.UnmarshalString(cfg.Auth); err != nil {
		return nil, fmt.Errorf("smtp: auth: %w", err)
	}
	if cfg.Port == 0 {
		cfg.Port = defaultPort(cfg.Protocol, cfg.Security)
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("smtp: invalid port %d", cfg.Port)
	}
	if cfg.HELO == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("smtp: helo: %w", err)
		}
		cfg.HELO = h
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.DataTimeout <= 0 {
		cfg.DataTimeout = 10 * time.Minute
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if cfg.CAFile != "" {
		pemBytes, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("smtp: ca_file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("smtp: ca_file %s: no PEM certificate found", cfg.CAFile)
		}
	}
	c.cfg = cfg
	c.trace = newTraceWriter(cfg.Debug)
	c.tls = &tls.Config{ServerName: cfg.Host, RootCAs: roots, MinVersion: tls.VersionTLS12}
	c.addr = net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	if len(cfg.Password) >= 3 {
		p := cfg.Password
		b64 := base64.StdEncoding.EncodeToString
		c.secrets = []string{
			p, b64([]byte(p)),
			b64([]byte("\x00" + cfg.Username + "\x00" + p)),
			b64([]byte(cfg.Username + "\x00" + cfg.Username + "\x00" + p)),
			b64([]byte("user=" + cfg.Username + "\x01auth=Bearer " + p + "\x01\x01")),
		}
	}
	return c, nil
}

// defaultPort is 587 for submission with STARTTLS, 465 for implicit TLS
// (RFC 8314), 25 for plain SMTP and 24 for LMTP (RFC 2033).
func defaultPort(protocol, security string) int {
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

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// dialState remembers, for one dial, the raw connection (go-mail v0.8.1
// does not close it when the handshake fails) and how far the dial got.
type dialState struct {
	raw    *trackedConn
	dialed bool
}

// dialer returns the DialContextFunc for one connection. Implicit TLS is
// done here because go-mail skips its own TLS dialer once a dial function
// is set; returning the *tls.Conn itself lets go-mail see that the
// connection is encrypted.
func (c *Client) dialer(st *dialState) gomail.DialContextFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		st.raw = &trackedConn{Conn: conn}
		st.dialed = true
		if c.cfg.Security != "tls" {
			return st.raw, nil
		}
		tc := tls.Client(st.raw, c.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, err
		}
		return tc, nil
	}
}

// Dial opens one connection: TCP, greeting, EHLO (LHLO for LMTP),
// STARTTLS or implicit TLS, and AUTH. The error is an *Error; IsFatal
// reports TLS, STARTTLS and authentication failures and 5xx replies, the
// rest (refused connection, 4xx) is temporary.
func (c *Client) Dial(ctx context.Context) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, &Error{Command: "CONNECT", Temporary: true, Err: err}
	}
	if c.cfg.Protocol == "lmtp" {
		return c.dialLMTP(ctx)
	}
	st := &dialState{}
	tr := newTracer(c.trace, c.secrets)
	policy := gomail.TLSMandatory
	switch c.cfg.Security {
	case "tls":
		// The connection is already TLS; opportunistic makes go-mail read
		// the TLS state and mark the session encrypted, which its AUTH
		// auto-discovery needs to consider PLAIN and LOGIN.
		policy = gomail.TLSOpportunistic
	case "none":
		policy = gomail.NoTLS
	}
	opts := []gomail.Option{
		gomail.WithPort(c.cfg.Port),
		gomail.WithTimeout(c.cfg.Timeout),
		gomail.WithHELO(c.cfg.HELO),
		gomail.WithTLSPolicy(policy),
		gomail.WithTLSConfig(c.tls),
		gomail.WithSMTPAuth(c.authType),
		gomail.WithDialContextFunc(c.dialer(st)),
		// The tracer always listens: it tells which command failed.
		gomail.WithLogger(tr),
		gomail.WithDebugLog(),
	}
	if c.authType != gomail.SMTPAuthNoAuth {
		opts = append(opts, gomail.WithUsername(c.cfg.Username), gomail.WithPassword(c.cfg.Password))
	}
	// One go-mail client per connection: its logger is per client, and the
	// logger is how we learn which step of the dial failed.
	gc, err := gomail.NewClient(c.cfg.Host, opts...)
	if err != nil {
		return nil, &Error{Command: "CONNECT", fatal: true, Err: fmt.Errorf("configure: %w", err)}
	}
	sc, err := gc.DialToSMTPClientWithContext(ctx)
	if err != nil {
		if st.raw != nil {
			_ = st.raw.Close()
		}
		return nil, c.dialError(st, tr, err)
	}
	tr.dialDone()
	cn := &Conn{c: c, sc: sc, raw: st.raw, tr: tr, lastReply: time.Now()}
	cn.pipelining, _ = sc.Extension("PIPELINING")
	cn.eightBit, _ = sc.Extension("8BITMIME")
	cn.utf8, _ = sc.Extension("SMTPUTF8")
	if ok, _ := sc.Extension("CHUNKING"); ok && cn.pipelining && !c.cfg.NoChunking {
		cn.chunking = true
	}
	return cn, nil
}

// dialError classifies a failed dial by the error's type and by the last
// command the tracer saw.
func (c *Client) dialError(st *dialState, tr *tracer, err error) *Error {
	cmd := tr.phase()
	if !st.dialed || cmd == "" {
		cmd = "CONNECT"
	}
	switch {
	case isTLSError(err):
		if c.cfg.Security == "starttls" {
			cmd = "STARTTLS"
		}
		return &Error{Command: cmd, Text: "TLS failure", Err: err, fatal: true}
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return &Error{Command: cmd, Temporary: true, Err: err}
	}
	e := wireError(cmd, err)
	if e.hasReply() {
		// Greeting, EHLO, STARTTLS or AUTH refused: a 5xx will not change.
		e.fatal = e.Code/100 == 5
		return e
	}
	if isNetError(err) {
		return e
	}
	// Neither a reply nor the network: go-mail refused locally. The one
	// check it makes before STARTTLS is that the server offers it.
	e.Temporary = false
	e.fatal = true
	if c.cfg.Security == "starttls" && !tr.sawStartTLS() {
		e.Command = "STARTTLS"
		e.Text = "server does not offer STARTTLS; refusing to send in plaintext"
		e.Err = nil
	} else if c.authType != gomail.SMTPAuthNoAuth {
		e.Command = "AUTH"
	}
	return e
}
