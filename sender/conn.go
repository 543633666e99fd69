package sender

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	gsmtp "github.com/emersion/go-smtp"
	mailsmtp "github.com/wneessen/go-mail/smtp"
)

// Conn is one open SMTP or LMTP connection. It is not safe for concurrent
// use; a Pool shares connections between goroutines.
type Conn struct {
	c   *Client
	sc  *mailsmtp.Client // SMTP, dialled by go-mail
	lc  *gsmtp.Client    // LMTP, go-smtp
	raw *trackedConn
	tr  *tracer
	// commit, when set (by a Pool for one transaction), is called before
	// the body is sent; see Hooks.Commit.
	commit func() error
	// broken is set once the connection cannot carry another transaction
	// (network error, 421, unknown outcome); it is then closed.
	broken bool
	// pipelining is set when the server offers PIPELINING (RFC 2920):
	// Send then writes MAIL FROM, every RCPT TO and DATA at once.
	pipelining bool
	// needRset is set once a transaction has begun on a pipelining
	// connection; the next group then starts with RSET instead of a Pool
	// spending a round trip on it before reuse.
	needRset bool
	// eightBit and utf8 record the server's 8BITMIME and SMTPUTF8, which
	// decide the MAIL FROM parameters as go-mail's Mail does.
	eightBit, utf8 bool
	// chunking is set when the server offers CHUNKING and PIPELINING and
	// Config.NoChunking is not: Send then uses sendChunked.
	chunking bool
	// lastReply is when the server last answered: a chunked group folds
	// its RSET in only on a connection that answered within foldWithin.
	lastReply time.Time
}

// foldWithin is how recently a connection must have answered for a
// chunked group to lead with RSET instead of checking the connection with
// a lone RSET first. A chunked group carries the message, so a connection
// that turns out dead after it was written leaves the message Unknown;
// servers drop idle connections after tens of seconds or more, so one
// that answered a moment ago is alive, and one idle longer pays a round
// trip to find out. A variable so that tests can shorten it.
var foldWithin = time.Second

// dialLMTP opens an LMTP connection with go-smtp's client, which, unlike
// go-mail, speaks LHLO and returns one reply per recipient after DATA.
func (c *Client) dialLMTP(ctx context.Context) (*Conn, error) {
	tr := newTracer(c.trace, c.secrets)
	dctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", c.addr)
	if err != nil {
		return nil, &Error{Command: "CONNECT", Temporary: true, Err: err}
	}
	raw := &trackedConn{Conn: nc}
	var conn net.Conn = raw
	if c.cfg.Security == "tls" {
		tc := tls.Client(raw, c.tls)
		if err := tc.HandshakeContext(dctx); err != nil {
			_ = raw.Close()
			if isTLSError(err) {
				return nil, &Error{Command: "CONNECT", Text: "TLS failure", Err: err, fatal: true}
			}
			return nil, &Error{Command: "CONNECT", Temporary: true, Err: err}
		}
		conn = tc
	}
	lc := gsmtp.NewClientLMTP(conn)
	lc.CommandTimeout = c.cfg.Timeout
	lc.SubmissionTimeout = c.cfg.DataTimeout
	lc.DebugWriter = &lmtpTrace{t: tr}
	fail := func(cmd string, err error) (*Conn, error) {
		_ = lc.Close()
		e := wireError(cmd, err)
		e.fatal = e.Code/100 == 5 || (!e.hasReply() && !isNetError(err))
		if e.fatal {
			e.Temporary = false
		}
		return nil, e
	}
	if err := lc.Hello(c.cfg.HELO); err != nil {
		return fail("EHLO", err)
	}
	if c.cfg.Auth != "none" {
		var a sasl.Client
		switch {
		case c.cfg.Auth == "plain" || (c.cfg.Auth == "auto" && lc.SupportsAuth(sasl.Plain)):
			a = sasl.NewPlainClient("", c.cfg.Username, c.cfg.Password)
		case c.cfg.Auth == "login" || (c.cfg.Auth == "auto" && lc.SupportsAuth(sasl.Login)):
			a = sasl.NewLoginClient(c.cfg.Username, c.cfg.Password)
		default:
			return fail("AUTH", errors.New("server offers neither PLAIN nor LOGIN"))
		}
		if err := lc.Auth(a); err != nil {
			return fail("AUTH", err)
		}
	}
	tr.dialDone()
	return &Conn{c: c, lc: lc, raw: raw, tr: tr}, nil
}

// checkAddr refuses what would let an address change the command line.
func checkAddr(a string) error {
	if a == "" || strings.ContainsAny(a, "\r\n\x00<> ") {
		return fmt.Errorf("invalid address %q", a)
	}
	return nil
}

// Send runs one transaction: MAIL FROM, one RCPT TO per address, DATA and
// the message. msg is sent as is (lines may end in LF or CRLF; dots are
// stuffed). The Result has one entry per address of to, in order.
//
// A rejected recipient (5xx) does not stop the others; a 4xx leaves that
// recipient Deferred with a temporary *Error. If no recipient is accepted,
// DATA is skipped. The returned error is non-nil when the transaction
// failed as a whole (MAIL FROM refused, connection lost, 421): every
// recipient not yet decided is then Deferred, and IsFatal tells whether
// the run must stop. A connection lost after the final "." was sent leaves
// the accepted recipients Unknown (RFC 1047) and returns an error.
//
// When the server offers PIPELINING the commands up to DATA go out in one
// write (sendPipelined), led by RSET when the connection carried a
// transaction before; if that RSET finds the connection dead, the error is
// an *Error for "RSET" that a Pool retries at once on a new connection.
func (cn *Conn) Send(ctx context.Context, from string, to []string, msg []byte) (*Result, error) {
	res := &Result{Rcpts: make([]RcptResult, len(to)), Attempts: 1}
	for i, a := range to {
		res.Rcpts[i] = RcptResult{Addr: a}
	}
	fail := func(err *Error) (*Result, error) {
		for i := range res.Rcpts {
			if res.Rcpts[i].Status == 0 {
				res.Rcpts[i].Status = Deferred
				res.Rcpts[i].Err = err
				res.Rcpts[i].Reply = err.Reply()
			}
		}
		return res, err
	}
	if cn.broken {
		return fail(&Error{Command: "MAIL FROM", Temporary: true, Err: errors.New("connection is closed")})
	}
	if err := checkAddr(from); err != nil {
		return fail(&Error{Command: "MAIL FROM", Err: err, fatal: true})
	}
	if err := ctx.Err(); err != nil {
		return fail(&Error{Command: "MAIL FROM", Temporary: true, Err: err})
	}
	// Cancelling ctx closes the socket: a read blocked on a silent server
	// (up to DataTimeout for the reply to the final ".") ends at once, and
	// the usual rules apply: Deferred before the ".", Unknown after it.
	if cn.raw != nil {
		stop := context.AfterFunc(ctx, func() { _ = cn.raw.Close() })
		defer func() {
			if !stop() {
				cn.kill() // closed underneath: never reuse it
			}
		}()
	}
	if cn.lc != nil {
		return cn.sendLMTP(ctx, res, from, to, msg, fail)
	}
	if cn.chunking {
		return cn.sendChunked(ctx, res, from, msg, fail)
	}
	if cn.pipelining {
		return cn.sendPipelined(ctx, res, from, msg, fail)
	}
	cn.deadline(cn.c.cfg.Timeout)
	// go-mail adds SMTPUTF8 whenever the server offers it; it is only
	// needed, and only then asked for, when an address is not ASCII.
	cn.sc.SkipSMTPUTF8(!needsUTF8(from, to))
	if err := cn.sc.Mail("<" + from + ">"); err != nil {
		e := cn.cmdError("MAIL FROM", err)
		e.fatal = e.Code/100 == 5
		return fail(e)
	}
	accepted := cn.rcpts(ctx, res)
	if cn.broken {
		return fail(res.firstErr())
	}
	if len(accepted) == 0 {
		// End the empty transaction so the connection can be reused; a
		// failure marks the connection broken, which is all that matters.
		_ = cn.Reset()
		return res, nil
	}
	if err := ctx.Err(); err != nil {
		_ = cn.Reset()
		return fail(&Error{Command: "DATA", Temporary: true, Err: err})
	}
	// DATA is driven on go-mail's textproto connection: its DataCloser
	// drops the error of writing the final ".", and without that error we
	// cannot tell "the . never left" (retry) from "no reply to the ."
	// (unknown). It also lets the body go out in one write.
	cn.deadline(cn.c.cfg.Timeout)
	cn.tr.note("C: ", "DATA")
	if err := cn.dataCmd(); err != nil {
		e := cn.cmdError("DATA", err)
		cn.settle(res, accepted, e)
		if cn.broken {
			return fail(e)
		}
		return res, nil
	}
	return cn.body(res, accepted, msg, fail)
}

// body writes the dot-stuffed message and its final ".", in one write,
// after the server's 354, and applies the reply to the final "." to the
// accepted recipients. A write error means the "." never left, so the
// recipients are Deferred; no reply after it leaves them Unknown
// (RFC 1047).
func (cn *Conn) body(res *Result, accepted []int, msg []byte, fail func(*Error) (*Result, error)) (*Result, error) {
	if err := cn.commitNow(); err != nil {
		return fail(err)
	}
	body := dotStuff(msg)
	cn.tr.note("C: ", fmt.Sprintf("[message, %d bytes]", len(msg)))
	if err := cn.writeBody(cn.sc.Text.W, body); err != nil {
		cn.kill()
		return fail(&Error{Command: "DATA", Temporary: true, Err: err})
	}
	cn.deadline(cn.c.cfg.Timeout)
	if err := cn.sc.Text.W.Flush(); err != nil {
		cn.kill()
		return fail(&Error{Command: "DATA", Temporary: true, Err: err})
	}
	cn.tr.note("C: ", ".")
	cn.deadline(cn.c.cfg.DataTimeout)
	code, text, err := cn.sc.Text.ReadResponse(250)
	if err != nil {
		var te *textproto.Error
		if !errors.As(err, &te) {
			cn.kill()
			e := &Error{Command: "DATA", Text: "no reply after the final \".\"", Err: err}
			for _, i := range accepted {
				res.Rcpts[i] = RcptResult{Addr: res.Rcpts[i].Addr, Status: Unknown, Err: e}
			}
			return res, e
		}
		cn.tr.note("S: ", fmt.Sprintf("%d %s", te.Code, te.Msg))
		e := cn.cmdError("DATA", err)
		cn.settle(res, accepted, e)
		if cn.broken {
			return fail(e)
		}
		return res, nil
	}
	cn.tr.note("S: ", fmt.Sprintf("%d %s", code, text))
	r := parseReply(code, text)
	for _, i := range accepted {
		res.Rcpts[i] = RcptResult{Addr: res.Rcpts[i].Addr, Status: Delivered, Reply: r}
	}
	return res, nil
}

// bodyChunk is how much of a body is written under one deadline.
const bodyChunk = 64 << 10

// writeBody writes b in chunks, each with a fresh Timeout: a deadline
// bounds a stalled server, not the size of the message, and the one set
// before the commit hook may already be spent (RFC 5321 section
// 4.5.3.2.5 gives each data block its own timeout).
func (cn *Conn) writeBody(w io.Writer, b []byte) error {
	for len(b) > 0 {
		n := min(len(b), bodyChunk)
		cn.deadline(cn.c.cfg.Timeout)
		if _, err := w.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// commitNow runs the commit hook, if any, before a body goes out. When it
// fails the connection is closed without the final ".", so the server
// drops the transaction and nothing is delivered.
func (cn *Conn) commitNow() *Error {
	if cn.commit == nil {
		return nil
	}
	if err := cn.commit(); err != nil {
		cn.kill()
		return &Error{Command: "DATA", Text: "not sent", Err: err, fatal: true}
	}
	return nil
}

// dataCmd sends DATA and expects 354.
func (cn *Conn) dataCmd() error {
	id, err := cn.sc.Text.Cmd("DATA")
	if err != nil {
		return err
	}
	cn.sc.Text.StartResponse(id)
	defer cn.sc.Text.EndResponse(id)
	code, text, err := cn.sc.Text.ReadResponse(354)
	var te *textproto.Error
	if errors.As(err, &te) {
		code, text = te.Code, te.Msg
	}
	if code != 0 {
		cn.tr.note("S: ", fmt.Sprintf("%d %s", code, text))
	}
	return err
}

// rcpts sends RCPT TO for every address and returns the indexes of the
// accepted ones. A 452 ends the batch early (RFC 5321 section 4.5.3.1.10):
// it and the remaining addresses are Deferred with that reply, so a Pool
// sends them in the next transaction.
func (cn *Conn) rcpts(ctx context.Context, res *Result) []int {
	var accepted []int
	for i := range res.Rcpts {
		rr := &res.Rcpts[i]
		if err := checkAddr(rr.Addr); err != nil {
			rr.Status = Rejected
			rr.Err = &Error{Command: "RCPT TO", Err: err}
			continue
		}
		if err := ctx.Err(); err != nil {
			e := &Error{Command: "RCPT TO", Temporary: true, Err: err}
			cn.deferFrom(res, i, e)
			return accepted
		}
		cn.deadline(cn.c.cfg.Timeout)
		var err error
		if cn.lc != nil {
			err = cn.lc.Rcpt(rr.Addr, nil)
		} else {
			err = cn.sc.Rcpt("<" + rr.Addr + ">")
		}
		if err == nil {
			accepted = append(accepted, i)
			continue
		}
		e := cn.cmdError("RCPT TO", err)
		if cn.broken {
			cn.deferFrom(res, i, e)
			return accepted
		}
		if e.Code == 452 {
			cn.deferFrom(res, i, e)
			return accepted
		}
		rr.Err, rr.Reply = e, e.Reply()
		rr.Status = Rejected
		if e.Temporary {
			rr.Status = Deferred
		}
	}
	return accepted
}

// refuseRcpt settles a recipient whose RCPT TO got e, given over, the
// first 452 of the group so far, and returns the new one: from a 452 on,
// every refused recipient goes to the next transaction, as if its RCPT TO
// had never been sent (RFC 5321 section 4.5.3.1.10); before it, 4xx is
// Deferred and 5xx Rejected.
func refuseRcpt(rr *RcptResult, e, over *Error) *Error {
	if e.Code == 452 && over == nil {
		over = e
	}
	switch {
	case over != nil:
		rr.Status, rr.Err, rr.Reply = Deferred, over, over.Reply()
	case e.Temporary:
		rr.Status, rr.Err, rr.Reply = Deferred, e, e.Reply()
	default:
		rr.Status, rr.Err, rr.Reply = Rejected, e, e.Reply()
	}
	return over
}

// deferFrom marks recipient i and all later undecided ones Deferred.
func (cn *Conn) deferFrom(res *Result, i int, e *Error) {
	for j := i; j < len(res.Rcpts); j++ {
		if res.Rcpts[j].Status == 0 {
			res.Rcpts[j].Status, res.Rcpts[j].Err, res.Rcpts[j].Reply = Deferred, e, e.Reply()
		}
	}
}

// settle applies one reply to all accepted recipients: 4xx Deferred, 5xx
// Rejected.
func (cn *Conn) settle(res *Result, accepted []int, e *Error) {
	st := Rejected
	if e.Temporary {
		st = Deferred
	}
	for _, i := range accepted {
		res.Rcpts[i].Status, res.Rcpts[i].Err, res.Rcpts[i].Reply = st, e, e.Reply()
	}
}

// firstErr returns the error of the first undecided-by-server recipient.
func (r *Result) firstErr() *Error {
	for _, rr := range r.Rcpts {
		var e *Error
		if rr.Status == Deferred && errors.As(rr.Err, &e) {
			return e
		}
	}
	return &Error{Command: "RCPT TO", Temporary: true, Err: errors.New("connection lost")}
}

// cmdError converts a command's error and marks the connection broken on
// a lost connection or a 421 (RFC 5321 section 3.8: the server is closing).
func (cn *Conn) cmdError(cmd string, err error) *Error {
	e := wireError(cmd, err)
	if !e.hasReply() || e.Code == 421 {
		cn.kill()
	}
	return e
}

// deadline bounds the next command. go-mail set one deadline for the
// whole dial (its WithTimeout) and never moves it when driven directly, so
// every command sets its own.
func (cn *Conn) deadline(d time.Duration) {
	if cn.raw != nil {
		_ = cn.raw.SetDeadline(time.Now().Add(d))
	}
}

// kill closes the socket without QUIT.
func (cn *Conn) kill() {
	if cn.broken {
		return
	}
	cn.broken = true
	if cn.raw != nil {
		_ = cn.raw.Close()
	}
}

// sendLMTP is Send over LMTP: after the final "." the server answers once
// per accepted recipient (RFC 2033 section 4.2).
func (cn *Conn) sendLMTP(ctx context.Context, res *Result, from string, to []string, msg []byte, fail func(*Error) (*Result, error)) (*Result, error) {
	if err := cn.lc.Mail(from, nil); err != nil {
		e := cn.cmdError("MAIL FROM", err)
		e.fatal = e.Code/100 == 5
		return fail(e)
	}
	accepted := cn.rcpts(ctx, res)
	if cn.broken {
		return fail(res.firstErr())
	}
	if len(accepted) == 0 {
		_ = cn.Reset()
		return res, nil
	}
	w, err := cn.lc.Data()
	if err != nil {
		e := cn.cmdError("DATA", err)
		cn.settle(res, accepted, e)
		if cn.broken {
			return fail(e)
		}
		return res, nil
	}
	if err := cn.commitNow(); err != nil {
		return fail(err)
	}
	// go-smtp clears the deadline after each command and sets one only
	// for reading the replies: the body needs its own.
	if err := cn.writeBody(w, msg); err != nil {
		cn.kill()
		return fail(&Error{Command: "DATA", Temporary: true, Err: err})
	}
	cn.deadline(cn.c.cfg.Timeout)
	before := cn.raw.writeErrs.Load()
	resp, err := w.CloseWithLMTPResponse()
	var lerr gsmtp.LMTPDataError
	for _, i := range accepted {
		a := to[i]
		if dr := resp[a]; dr != nil {
			res.Rcpts[i] = RcptResult{Addr: a, Status: Delivered, Reply: parseReply(250, dr.StatusText)}
			continue
		}
		if errors.As(err, &lerr) && lerr[a] != nil {
			e := wireError("DATA", lerr[a])
			st := Rejected
			if e.Temporary {
				st = Deferred
			}
			res.Rcpts[i] = RcptResult{Addr: a, Status: st, Reply: e.Reply(), Err: e}
		}
	}
	if _, onlyReplies := err.(gsmtp.LMTPDataError); err == nil || onlyReplies {
		return res, nil
	}
	// The connection failed: before the "." left (write error) it is safe
	// to retry; after, the recipients without a reply are unknown.
	cn.kill()
	if cn.raw.writeErrs.Load() != before {
		return fail(&Error{Command: "DATA", Temporary: true, Err: err})
	}
	e := &Error{Command: "DATA", Text: "no reply after the final \".\"", Err: err}
	for _, i := range accepted {
		if res.Rcpts[i].Status == 0 {
			res.Rcpts[i] = RcptResult{Addr: to[i], Status: Unknown, Err: e}
		}
	}
	return res, e
}

// probe checks that an idle connection still answers before it is reused.
// SMTP uses RSET. LMTP uses NOOP: its last transaction ended with the
// replies to DATA, and go-smtp's Reset would also forget the LHLO, which
// the next MAIL then repeats (three round trips instead of one).
func (cn *Conn) probe() error {
	if cn.lc == nil || cn.needRset {
		return cn.Reset()
	}
	if cn.broken {
		return &Error{Command: "NOOP", Temporary: true, Err: errors.New("connection is closed")}
	}
	cn.deadline(cn.c.cfg.Timeout)
	if err := cn.lc.Noop(); err != nil {
		e := wireError("NOOP", err)
		cn.kill()
		return e
	}
	return nil
}

// Reset sends RSET, ending any transaction; a Pool calls it before
// reusing an SMTP connection without PIPELINING, which also proves the
// connection is still alive (a pipelining one sends RSET with its next
// group instead). The error is an *Error for "RSET".
func (cn *Conn) Reset() error {
	if cn.broken {
		return &Error{Command: "RSET", Temporary: true, Err: errors.New("connection is closed")}
	}
	cn.deadline(cn.c.cfg.Timeout)
	var err error
	if cn.lc != nil {
		err = cn.lc.Reset()
	} else {
		err = cn.sc.Reset()
	}
	if err != nil {
		e := wireError("RSET", err)
		cn.kill()
		return e
	}
	cn.needRset = false
	cn.lastReply = time.Now()
	return nil
}

// staleConnError marks a pipelined group whose leading RSET found the
// connection dead: nothing of the transaction reached the server, so a
// Pool retries it at once on a new connection, without counting an
// attempt, as it did when it probed idle connections with RSET.
type staleConnError struct{ err error }

func (e *staleConnError) Error() string {
	return fmt.Sprintf("connection found dead on reuse: %v", e.err)
}

func (e *staleConnError) Unwrap() error { return e.err }

// isStale reports whether err is a staleConnError.
func isStale(err error) bool {
	var se *staleConnError
	return errors.As(err, &se)
}

// Close sends QUIT and waits for the server to close its side, so that a
// new connection opened right after never overlaps this one on the
// server. A broken connection is just closed.
func (cn *Conn) Close() error {
	if cn.broken {
		return nil
	}
	cn.broken = true
	defer cn.raw.Close()
	cn.deadline(min(cn.c.cfg.Timeout, 10*time.Second))
	if cn.lc != nil {
		if err := cn.lc.Quit(); err != nil {
			return wireError("QUIT", err)
		}
		return nil
	}
	id, err := cn.sc.Text.Cmd("QUIT")
	if err != nil {
		return wireError("QUIT", err)
	}
	cn.sc.Text.StartResponse(id)
	cn.tr.note("C: ", "QUIT")
	code, text, err := cn.sc.Text.ReadResponse(221)
	cn.sc.Text.EndResponse(id)
	if err != nil {
		return wireError("QUIT", err)
	}
	cn.tr.note("S: ", fmt.Sprintf("%d %s", code, text))
	_, _ = io.Copy(io.Discard, cn.sc.Text.R)
	return nil
}

// needsUTF8 reports whether an envelope address is not plain ASCII, which
// is when MAIL FROM must carry SMTPUTF8 (RFC 6531 section 3.4).
func needsUTF8(from string, to []string) bool {
	for _, a := range append([]string{from}, to...) {
		for i := 0; i < len(a); i++ {
			if a[i] >= 0x80 {
				return true
			}
		}
	}
	return false
}

// mailParams returns the MAIL FROM parameters go-mail's Mail would add:
// BODY=8BITMIME when the server offers 8BITMIME (RFC 6152), and SMTPUTF8
// when it offers SMTPUTF8 and an address needs it.
func (cn *Conn) mailParams(from string, to []string) string {
	p := ""
	if cn.eightBit {
		p += " BODY=8BITMIME"
	}
	if cn.utf8 && needsUTF8(from, to) {
		p += " SMTPUTF8"
	}
	return p
}

// sendPipelined is Send for a server that offers PIPELINING (RFC 2920):
// MAIL FROM, every RCPT TO and DATA leave in one write, and the replies
// are read in order afterwards, so a message costs two round trips (the
// group, then the body) instead of one per command. DATA is the group's
// last command because the body may only follow its 354 (RFC 2920
// section 3.1); when no RCPT TO was accepted the server refuses DATA and
// the body is not sent. The outcomes are those of the one-command-at-a-time
// path.
func (cn *Conn) sendPipelined(ctx context.Context, res *Result, from string, msg []byte, fail func(*Error) (*Result, error)) (*Result, error) {
	to := make([]string, len(res.Rcpts))
	var sent []int // recipients whose RCPT TO goes out
	for i := range res.Rcpts {
		to[i] = res.Rcpts[i].Addr
		if checkAddr(to[i]) == nil {
			sent = append(sent, i)
		}
	}
	w := cn.sc.Text.W
	// Before the first write: a large group flushes itself while it is
	// being written, and must not run into an older, spent deadline.
	cn.deadline(cn.c.cfg.Timeout)
	cmd := func(line string) {
		cn.tr.note("C: ", line)
		_, _ = w.WriteString(line)
		_, _ = w.WriteString("\r\n")
	}
	rset := cn.needRset
	if rset {
		cmd("RSET")
	}
	cmd("MAIL FROM:<" + from + ">" + cn.mailParams(from, to))
	for _, i := range sent {
		cmd("RCPT TO:<" + to[i] + ">")
	}
	if len(sent) > 0 {
		cmd("DATA")
	}
	cn.deadline(cn.c.cfg.Timeout)
	if err := w.Flush(); err != nil {
		cn.kill()
		if rset {
			return fail(&Error{Command: "RSET", Temporary: true, Err: &staleConnError{err}})
		}
		return fail(&Error{Command: "MAIL FROM", Temporary: true, Err: err})
	}
	cn.needRset = true
	if rset {
		if err := cn.readReply(250); err != nil {
			// The connection died while idle (or the server refuses to go
			// on with it): nothing of this transaction was processed.
			cn.kill()
			e := wireError("RSET", err)
			e.Temporary, e.Err = true, &staleConnError{e.Err}
			return fail(e)
		}
	}

	if err := cn.readReply(250); err != nil {
		e := cn.cmdError("MAIL FROM", err)
		e.fatal = e.Code/100 == 5
		cn.drain(len(sent))
		return fail(e)
	}
	for i := range res.Rcpts {
		if err := checkAddr(to[i]); err != nil {
			res.Rcpts[i].Status, res.Rcpts[i].Err = Rejected, &Error{Command: "RCPT TO", Err: err}
		}
	}
	var accepted []int
	var over *Error // the first 452: it ends the batch (RFC 5321 section 4.5.3.1.10)
	for _, i := range sent {
		err := cn.readReply(25)
		if err == nil {
			// Accepted even after a 452: the server delivers to it with
			// this transaction, so it must not be sent again.
			accepted = append(accepted, i)
			continue
		}
		e := cn.cmdError("RCPT TO", err)
		if cn.broken {
			cn.deferFrom(res, i, e)
			return fail(res.firstErr())
		}
		over = refuseRcpt(&res.Rcpts[i], e, over)
	}
	if len(sent) == 0 {
		return res, nil
	}
	err := cn.readReply(354)
	if len(accepted) == 0 {
		if err == nil {
			// DATA went through without a recipient; sending no body is
			// all that is left, and DATA cannot end without one.
			cn.kill()
		} else {
			_ = cn.cmdError("DATA", err)
		}
		return res, nil
	}
	if err != nil {
		e := cn.cmdError("DATA", err)
		cn.settle(res, accepted, e)
		if cn.broken {
			return fail(e)
		}
		return res, nil
	}
	if err := ctx.Err(); err != nil {
		// The server waits for a body; only closing ends that safely.
		cn.kill()
		return fail(&Error{Command: "DATA", Temporary: true, Err: err})
	}
	return cn.body(res, accepted, msg, fail)
}

// readReply reads one reply of a pipelined group, traces it and returns
// the textproto error for a code other than expect (a prefix, as in
// textproto.Reader.ReadResponse).
func (cn *Conn) readReply(expect int) error {
	// Timeout bounds each reply, not the group (RFC 5321 section 4.5.3.2):
	// a relay that checks each recipient slowly is not a dead one.
	cn.deadline(cn.c.cfg.Timeout)
	code, text, err := cn.sc.Text.ReadResponse(expect)
	var te *textproto.Error
	if errors.As(err, &te) {
		code, text = te.Code, te.Msg
	}
	if code != 0 {
		cn.tr.reply(code, text)
		cn.lastReply = time.Now()
	}
	return err
}

// drain reads the replies to the n RCPT TO and the DATA that followed a
// refused MAIL FROM in one pipelined group, so the connection stays in
// step with the server. A lost connection, or a DATA the server accepted
// anyway (its body can only be a message), closes the connection.
func (cn *Conn) drain(n int) {
	if cn.broken {
		return
	}
	for range n {
		if err := cn.readReply(25); err != nil && !wireError("", err).hasReply() {
			cn.kill()
			return
		}
	}
	if n == 0 {
		return
	}
	if err := cn.readReply(354); err == nil || !wireError("", err).hasReply() {
		cn.kill()
	}
}
