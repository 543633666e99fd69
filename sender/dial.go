package sender

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"time"
)

// Dial opens one connection and makes it ready for Conn.Send, in steps
// that each name a failure: connect (TCP, then the TLS handshake for
// implicit TLS), greeting, hello (EHLO, LHLO for LMTP), startTLS when
// Security is starttls (STARTTLS, the handshake, EHLO again), and
// authenticate (AUTH). One *textproto.Reader and one *bufio.Writer carry
// the whole conversation, which the Client's one tracer writes out.
//
// The error is an *Error whose Command is "CONNECT", "greeting", "EHLO"
// or "LHLO", "STARTTLS" or "AUTH", with the server's reply when there was
// one. IsFatal reports TLS failures, a server without STARTTLS when
// Security is starttls, 5xx replies (bad credentials among them) and a
// server that does not speak SMTP; the rest (a refused or lost
// connection, 4xx, a cancelled ctx) is temporary. A failed dial closes its
// socket.
func (c *Client) Dial(ctx context.Context) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, &Error{Command: "CONNECT", Temporary: true, Err: err}
	}
	cn, e := c.connect(ctx)
	if e != nil {
		return nil, e
	}
	// Cancelling ctx closes the socket: a step blocked on a silent server
	// ends at once instead of after Timeout.
	stop := context.AfterFunc(ctx, func() { _ = cn.raw.Close() })
	step, e := cn.handshake(ctx)
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

// connect opens the TCP connection within Timeout and, for implicit TLS
// (RFC 8314 section 3.3), completes the handshake on it. A refused,
// unreachable or timed-out connection is temporary; a failed handshake
// is fatal unless the network broke it.
func (c *Client) connect(ctx context.Context) (*Conn, *Error) {
	dctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", c.addr)
	if err != nil {
		return nil, &Error{Command: "CONNECT", Temporary: true, Err: err}
	}
	cn := &Conn{c: c, raw: &trackedConn{Conn: nc}, tr: newTracer(c.trace, c.secrets), lmtp: c.cfg.Protocol == "lmtp"}
	if c.cfg.Security != "tls" {
		cn.setText(cn.raw)
		return cn, nil
	}
	tc := tls.Client(cn.raw, c.tls)
	if err := tc.HandshakeContext(dctx); err != nil {
		_ = cn.raw.Close()
		return nil, tlsError("CONNECT", err)
	}
	cn.tlsConn = tc
	cn.setText(tc)
	return cn, nil
}

// handshake runs the steps after connect. step is the last one it began,
// which names a cancellation that closed the socket under it.
func (cn *Conn) handshake(ctx context.Context) (step string, e *Error) {
	if e := cn.greeting(); e != nil {
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

// greeting reads the server's 220 (RFC 5321 section 4.3.1); a 554 says
// it will not serve this client, a 421 that it is busy.
func (cn *Conn) greeting() *Error {
	if _, _, err := cn.reply(220); err != nil {
		return dialError("greeting", err)
	}
	return nil
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
		return nil, tlsError("STARTTLS", err)
	}
	cn.tlsConn = tc
	cn.setText(tc)
	return cn.hello()
}

// ready records what the server offers that a transaction uses.
func (cn *Conn) ready(ext map[string]string) {
	_, cn.pipelining = ext["PIPELINING"]
	_, cn.eightBit = ext["8BITMIME"]
	_, cn.utf8 = ext["SMTPUTF8"]
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

// tlsError classifies a failed TLS handshake: fatal unless the network
// broke it (RFC 8314 section 5.1 and RFC 3207 section 4: no fallback).
func tlsError(step string, err error) *Error {
	if isTransport(err) && !isTLSError(err) {
		return &Error{Command: step, Temporary: true, Err: err}
	}
	return &Error{Command: step, Text: "TLS failure", Err: err, fatal: true}
}
