package sender

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

// Dial opens one connection and makes it ready for Conn.Send, in steps
// that each name a failure: connect (TCP, then the TLS handshake for
// implicit TLS), greeting, hello (EHLO, LHLO for LMTP), startTLS when
// Security is starttls (STARTTLS, the handshake, EHLO again), and
// authenticate (AUTH). ConnectTimeout bounds connect and greeting
// together; Timeout each later step. One *textproto.Reader and one
// *bufio.Writer carry the whole conversation, which the Client's one
// tracer writes out.
//
// The error is an *Error whose Command is "CONNECT", "greeting", "EHLO"
// or "LHLO", "STARTTLS" or "AUTH", with the server's reply when there was
// one. A relay that could not be reached (refused, no route, no greeting
// in time) matches ErrUnreachable and is temporary. IsFatal reports TLS
// failures and mismatches (their Text names the setting that mends them:
// security, ca_file), a server without STARTTLS when Security is
// starttls, 5xx replies (bad credentials among them) and a server that
// does not speak SMTP; the rest (a lost connection, 4xx, a cancelled ctx)
// is temporary. A failed dial closes its socket.
func (c *Client) Dial(ctx context.Context) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, &Error{Command: "CONNECT", Temporary: true, Err: err}
	}
	deadline := time.Now().Add(c.cfg.ConnectTimeout)
	cn, e := c.connect(ctx, deadline)
	if e != nil {
		return nil, e
	}
	// Cancelling ctx closes the socket: a step blocked on a silent server
	// ends at once instead of after Timeout.
	stop := context.AfterFunc(ctx, func() { _ = cn.raw.Close() })
	step, e := cn.handshake(ctx, deadline)
	if !stop() {
		// The cancel closed the socket under the step: whatever the step
		// saw, it saw because of that.
		e = &Error{Command: step, Temporary: true, Err: ctx.Err()}
	}
	if e != nil {
		_ = cn.raw.Close()
		return nil, e
	}
	return cn, nil
}

// connect opens the TCP connection by deadline and, for implicit TLS
// (RFC 8314 section 3.3), completes the handshake on it. A connection
// that cannot be opened, or a handshake the network breaks, is
// unreachable (ErrUnreachable) unless ctx was cancelled; a handshake that
// fails otherwise is fatal (tlsError).
func (c *Client) connect(ctx context.Context, deadline time.Time) (*Conn, *Error) {
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", c.addr)
	if err != nil {
		return nil, &Error{Command: "CONNECT", Temporary: true, Err: err, unreachable: ctx.Err() == nil}
	}
	cn := &Conn{c: c, raw: &trackedConn{Conn: nc}, tr: newTracer(c.trace, c.secrets), lmtp: c.cfg.Protocol == "lmtp"}
	if c.cfg.Security != "tls" {
		cn.setText(cn.raw)
		return cn, nil
	}
	tc := tls.Client(cn.raw, c.tls)
	if err := tc.HandshakeContext(dctx); err != nil {
		_ = cn.raw.Close()
		if ctx.Err() != nil {
			return nil, &Error{Command: "CONNECT", Temporary: true, Err: ctx.Err()}
		}
		return nil, c.tlsError("CONNECT", err)
	}
	cn.tlsConn = tc
	cn.setText(tc)
	return cn, nil
}

// handshake runs the steps after connect, the greeting by deadline. step
// is the last one it began, which names a cancellation that closed the
// socket under it.
func (cn *Conn) handshake(ctx context.Context, deadline time.Time) (step string, e *Error) {
	if e := cn.greeting(deadline); e != nil {
		return "greeting", e
	}
	ext, e := cn.hello()
	if e != nil {
		return e.Command, e
	}
	step = cn.helloVerb()
	if cn.c.cfg.Security == "starttls" {
		if ext, e = cn.startTLS(ctx, ext); e != nil {
			return e.Command, e
		}
		step = "STARTTLS"
	}
	if cn.c.cfg.Auth != "none" {
		if e := cn.authenticate(ext); e != nil {
			return "AUTH", e
		}
		step = "AUTH"
	}
	cn.ready(ext)
	return step, nil
}

// greeting reads the server's 220 (RFC 5321 section 4.3.1) by deadline; a
// 554 says it will not serve this client, a 421 that it is busy. Without
// TLS, firstBytes first tells a server that starts with TLS. No greeting
// at all (a silent server, a connection closed or reset first) is
// unreachable.
func (cn *Conn) greeting(deadline time.Time) *Error {
	if cn.tlsConn == nil {
		if e := cn.firstBytes(deadline); e != nil {
			return e
		}
	}
	_ = cn.raw.SetDeadline(deadline)
	if _, _, err := cn.readReply(220); err != nil {
		e := dialError("greeting", err)
		if !e.hasReply() && isTransport(err) {
			e.Text, e.unreachable = "no greeting", true
		}
		return e
	}
	return nil
}

// tlsProbe is the part of ConnectTimeout, at most 3s, kept at the end of
// a silent greeting wait to find out whether the server speaks TLS.
func (cn *Conn) tlsProbe() time.Duration {
	return min(cn.c.cfg.ConnectTimeout/4, 3*time.Second)
}

// firstBytes waits for the first bytes of a plaintext greeting. A TLS
// record (0x16 0x03: a handshake) is a server that starts with TLS, a
// security mismatch; so is a silence that a TLS ClientHello breaks
// (speaksTLS, in the last tlsProbe of the deadline): an implicit-TLS port
// (RFC 8314) waits for the client without a word. A silence that does
// not break is unreachable, with how long it lasted.
func (cn *Conn) firstBytes(deadline time.Time) *Error {
	_ = cn.raw.SetDeadline(deadline.Add(-cn.tlsProbe()))
	b, err := cn.r.R.Peek(2)
	switch {
	case len(b) == 2 && b[0] == 0x16 && b[1] == 0x03:
		return cn.startsWithTLS()
	case len(b) > 0 || !errors.Is(err, os.ErrDeadlineExceeded):
		return nil // readReply reads it, or meets the error again
	case cn.speaksTLS(deadline):
		return cn.startsWithTLS()
	}
	return &Error{Command: "greeting", Temporary: true, Err: err, unreachable: true,
		Text: fmt.Sprintf("no greeting within %v", cn.c.cfg.ConnectTimeout)}
}

// startsWithTLS is the error of a server that speaks TLS before SMTP while
// Security is starttls or none.
func (cn *Conn) startsWithTLS() *Error {
	return &Error{Command: "greeting", fatal: true,
		Text: fmt.Sprintf("the server on port %d starts with TLS: use security: tls", cn.c.cfg.Port)}
}

// speaksTLS reports whether a server that sent no greeting answers a TLS
// ClientHello as a TLS server does, by deadline: the handshake completes
// or fails on its certificate. A plaintext answer (tls.RecordHeaderError:
// a late greeting) or none is not TLS. The connection is spent either
// way, and nothing of the run was sent on it.
func (cn *Conn) speaksTLS(deadline time.Time) bool {
	_ = cn.raw.SetDeadline(deadline)
	err := tls.Client(cn.raw, cn.c.tls).Handshake()
	var rhe tls.RecordHeaderError
	return err == nil || isTLSError(err) && !errors.As(err, &rhe)
}

// hello sends EHLO, LHLO for LMTP (RFC 2033 section 4.1), and returns the
// extensions the server offers. An SMTP server that does not know EHLO
// (500 or 502) gets HELO and offers none (RFC 5321 section 3.2); its
// failure is still the EHLO step's.
func (cn *Conn) hello() (ext map[string]string, e *Error) {
	verb := cn.helloVerb()
	_, text, err := cn.cmd(250, verb, " ", cn.c.cfg.HELO)
	if err == nil {
		return parseExtensions(text), nil
	}
	e = dialError(verb, err)
	if cn.lmtp || (e.Code != 500 && e.Code != 502) {
		return nil, e
	}
	if _, _, err := cn.cmd(250, "HELO ", cn.c.cfg.HELO); err != nil {
		return nil, dialError("EHLO", err)
	}
	return map[string]string{}, nil
}

// helloVerb is EHLO, or LHLO for LMTP.
func (cn *Conn) helloVerb() string {
	if cn.lmtp {
		return "LHLO"
	}
	return "EHLO"
}

// parseExtensions reads an EHLO reply: after the server's name, one
// keyword per line with its parameters, keyed here by the upper-case
// keyword (RFC 5321 section 4.1.1.1).
func parseExtensions(text string) map[string]string {
	ext := map[string]string{}
	_, lines, _ := strings.Cut(text, "\n")
	for lines != "" {
		var line string
		line, lines, _ = strings.Cut(lines, "\n")
		kw, params, _ := strings.Cut(strings.TrimSpace(line), " ")
		ext[strings.ToUpper(kw)] = params
	}
	return ext
}

// startTLS upgrades the connection (RFC 3207): STARTTLS, the handshake
// over the same socket, and EHLO again, since what the server offered in
// plaintext no longer counts (section 4.2). A server that does not offer
// STARTTLS is refused: starttls never falls back to plaintext.
func (cn *Conn) startTLS(ctx context.Context, ext map[string]string) (map[string]string, *Error) {
	if _, ok := ext["STARTTLS"]; !ok {
		return nil, &Error{Command: "STARTTLS", Text: "server does not offer STARTTLS; refusing to send in plaintext", fatal: true}
	}
	if _, _, err := cn.cmd(220, "STARTTLS"); err != nil {
		return nil, dialError("STARTTLS", err)
	}
	if cn.r.R.Buffered() > 0 {
		// Bytes after the 220 came in plaintext, yet would be read as the
		// first replies over TLS: whoever sent them is out of step, or
		// injecting replies; either way the connection cannot be trusted.
		return nil, &Error{Command: "STARTTLS", Text: "server sent data after its 220 reply", fatal: true}
	}
	tc := tls.Client(cn.raw, cn.c.tls)
	cn.deadline(cn.c.cfg.Timeout)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, cn.c.tlsError("STARTTLS", err)
	}
	cn.tlsConn = tc
	cn.setText(tc)
	return cn.hello()
}

// ready records what the server offers that a transaction uses: SIZE
// with its limit (RFC 1870 section 4: none when it names none, or 0)
// among them.
func (cn *Conn) ready(ext map[string]string) {
	_, cn.pipelining = ext["PIPELINING"]
	_, cn.eightBit = ext["8BITMIME"]
	_, cn.utf8 = ext["SMTPUTF8"]
	var size string
	size, cn.sizeOffered = ext["SIZE"]
	if n, err := strconv.ParseInt(size, 10, 64); err == nil && n > 0 {
		cn.sizeLimit = n
	}
	_, chunking := ext["CHUNKING"]
	cn.chunking = chunking && cn.pipelining && !cn.c.cfg.NoChunking
	cn.lastReply = time.Now()
}

// dialError classifies the failure of a dial step from typed values: a
// reply keeps its codes and is temporary for 4xx and fatal otherwise (a
// 5xx, or a code that cannot answer the step); a broken connection is
// temporary; anything else (a malformed reply, a TLS alert from the
// server) means the peer does not speak SMTP with us, which retrying will
// not change.
func dialError(step string, err error) *Error {
	e := wireError(step, err)
	switch {
	case e.hasReply():
		e.fatal = e.Code/100 != 4
	case isTransport(err):
	default:
		e.Temporary, e.fatal = false, true
	}
	return e
}

// tlsError classifies a failed TLS handshake: unreachable when the
// network broke the handshake of implicit TLS, temporary when it broke
// STARTTLS's, and otherwise fatal (RFC 8314 section 5.1 and RFC 3207
// section 4: no fallback), with Text naming the setting that mends it
// (tlsAdvice).
func (c *Client) tlsError(step string, err error) *Error {
	if isTransport(err) && !isTLSError(err) {
		return &Error{Command: step, Temporary: true, Err: err, unreachable: step == "CONNECT"}
	}
	return &Error{Command: step, Text: c.tlsAdvice(step, err), Err: err, fatal: true}
}

// tlsAdvice names a TLS failure from its typed cause and, where a setting
// mends it, the setting: security for a plaintext server met with
// implicit TLS (its greeting is no TLS record), ca_file for a certificate
// signed by an authority the client does not know.
func (c *Client) tlsAdvice(step string, err error) string {
	var (
		rhe tls.RecordHeaderError
		uae x509.UnknownAuthorityError
		he  x509.HostnameError
		cie x509.CertificateInvalidError
	)
	const useCA = ": set smtp.ca_file to the CA that signed the server's certificate"
	switch {
	case step == "CONNECT" && errors.As(err, &rhe):
		fix := "starttls"
		if c.cfg.Protocol == "lmtp" {
			fix = "none" // LMTP has no STARTTLS here
		}
		return "the server does not speak TLS at once: use security: " + fix
	case errors.As(err, &uae) && c.cfg.CAFile != "":
		return "the server's certificate is signed by an authority that neither the system nor ca_file " + c.cfg.CAFile + " trusts" + useCA
	case errors.As(err, &uae):
		return "the server's certificate is signed by an unknown authority" + useCA
	case errors.As(err, &he):
		return "the server's certificate is not valid for " + trimBrackets(c.cfg.Host)
	case errors.As(err, &cie):
		return "the server's certificate is not valid"
	}
	return "TLS failure"
}
