package sender

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// Conn is one open SMTP or LMTP connection. It is not safe for concurrent
// use; a Pool shares connections between goroutines.
type Conn struct {
	c   *Client
	raw *trackedConn
	// tlsConn is the TLS connection over raw, nil without TLS.
	tlsConn *tls.Conn
	// r and w carry the conversation, over tlsConn once there is one.
	r  *textproto.Reader
	w  *bufio.Writer
	tr *tracer
	// lmtp is set for LMTP: the end of a message gets one reply per
	// accepted recipient (RFC 2033 section 4.2).
	lmtp bool
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
	// decide the MAIL FROM parameters (mailParams).
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

// checkAddr refuses what would let an address change the command line.
func checkAddr(a string) error {
	if a == "" || strings.ContainsAny(a, "\r\n\x00<> ") {
		return fmt.Errorf("invalid address %q", a)
	}
	return nil
}

// Send runs one transaction: MAIL FROM, one RCPT TO per address, DATA and
// the message. msg is sent as is (lines may end in LF or CRLF; dots are
// stuffed). The Result has one entry per address of to, in order. SMTP
// and LMTP take the same path; LMTP differs only in the replies to the
// end of the message, one per accepted recipient (settleMessage).
//
// Addresses go on the wire as wireAddr makes them: as they are when the
// relay offers SMTPUTF8, the domain as A-labels when it does not. A
// recipient that cannot go (an invalid address, a non-ASCII local part
// without SMTPUTF8, a domain idna refuses) is Rejected with a permanent
// *Error for "RCPT TO" without a reply, the first wrapping ErrNoSMTPUTF8,
// and nothing is sent for it; a sender that cannot go fails the message
// with a fatal *Error for "MAIL FROM". Result keeps the addresses as
// given.
//
// A rejected recipient (5xx) does not stop the others; a 4xx leaves that
// recipient Deferred with a temporary *Error. If no recipient is accepted,
// no message is sent. The returned error is non-nil when the transaction
// failed as a whole (MAIL FROM refused, connection lost, 421): every
// recipient not yet decided is then Deferred, and IsFatal tells whether
// the run must stop. A connection lost after the final "." was sent leaves
// the accepted recipients Unknown (RFC 1047) and returns an error.
//
// When the server offers PIPELINING the commands up to DATA go out in one
// write (sendPipelined), led by RSET when the connection carried a
// transaction before; if that RSET finds the connection dead, the error is
// an *Error for "RSET" that a Pool retries at once on a new connection.
// With CHUNKING too, the message goes in that write (sendChunked).
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
	wfrom, e := cn.wireFrom(from)
	if e != nil {
		return fail(e)
	}
	if err := ctx.Err(); err != nil {
		return fail(&Error{Command: "MAIL FROM", Temporary: true, Err: err})
	}
	sent, wto := cn.envelope(res, to)
	if len(sent) == 0 {
		return res, nil
	}
	// Cancelling ctx closes the socket: a read blocked on a silent server
	// (up to DataTimeout for the reply to the final ".") ends at once, and
	// the usual rules apply: Deferred before the ".", Unknown after it.
	stop := context.AfterFunc(ctx, func() { _ = cn.raw.Close() })
	defer func() {
		if !stop() {
			cn.kill() // closed underneath: never reuse it
		}
	}()
	t := &txn{res: res, from: wfrom, to: wto, sent: sent, msg: msg, fail: fail}
	switch {
	case cn.chunking:
		return cn.sendChunked(t)
	case cn.pipelining:
		return cn.sendPipelined(ctx, t)
	}
	return cn.sendStepwise(ctx, t)
}

// txn is one transaction in flight: the Result being filled, the
// envelope, the recipients whose RCPT TO goes out, and fail, which
// settles every undecided recipient Deferred with one error.
type txn struct {
	res *Result
	// from and to are the envelope as it goes on the wire (wireAddr);
	// res keeps the addresses as the caller gave them.
	from string
	to   []string
	// sent holds the indexes of the recipients whose RCPT TO goes out.
	sent []int
	msg  []byte
	fail func(*Error) (*Result, error)
}

// sendStepwise is Send for a server without PIPELINING: one command, one
// reply.
func (cn *Conn) sendStepwise(ctx context.Context, t *txn) (*Result, error) {
	res := t.res
	if _, _, err := cn.cmd(250, "MAIL FROM:<", t.from, ">", cn.mailParams(t.from, t.to)); err != nil {
		e := cn.cmdError("MAIL FROM", err)
		e.fatal = e.Code/100 == 5
		return t.fail(e)
	}
	accepted := cn.rcpts(ctx, t)
	if cn.broken {
		return t.fail(res.firstErr())
	}
	if len(accepted) == 0 {
		// End the empty transaction so the connection can be reused; a
		// failure marks the connection broken, which is all that matters.
		_ = cn.Reset()
		return res, nil
	}
	if err := ctx.Err(); err != nil {
		_ = cn.Reset()
		return t.fail(&Error{Command: "DATA", Temporary: true, Err: err})
	}
	if _, _, err := cn.cmd(354, "DATA"); err != nil {
		e := cn.cmdError("DATA", err)
		cn.settle(res, accepted, e)
		if cn.broken {
			return t.fail(e)
		}
		return res, nil
	}
	return cn.body(t, accepted)
}

// rcpts sends RCPT TO for the recipients of t.sent, one at a time, and
// returns the indexes of the accepted ones. A 452 ends the batch early
// (RFC 5321 section 4.5.3.1.10): it and the remaining addresses are
// Deferred with that reply, so a Pool sends them in the next transaction.
func (cn *Conn) rcpts(ctx context.Context, t *txn) []int {
	res, sent := t.res, t.sent
	var accepted []int
	for k, i := range sent {
		rr := &res.Rcpts[i]
		if err := ctx.Err(); err != nil {
			cn.deferFrom(res, sent[k:], &Error{Command: "RCPT TO", Temporary: true, Err: err})
			return accepted
		}
		_, _, err := cn.cmd(25, "RCPT TO:<", t.to[i], ">")
		if err == nil {
			accepted = append(accepted, i)
			continue
		}
		e := cn.cmdError("RCPT TO", err)
		if cn.broken || e.Code == 452 {
			cn.deferFrom(res, sent[k:], e)
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

// body writes the dot-stuffed message and its final ".", in one write,
// after the server's 354, and settles the accepted recipients with the
// replies to the final "." (settleMessage). A write error means the "."
// never left, so the recipients are Deferred.
func (cn *Conn) body(t *txn, accepted []int) (*Result, error) {
	if err := cn.commitNow(); err != nil {
		return t.fail(err)
	}
	body := dotStuff(t.msg)
	if cn.tr != nil {
		cn.tr.client("[message, " + strconv.Itoa(len(t.msg)) + " bytes]")
	}
	err := cn.writeBody(body)
	if err == nil {
		cn.deadline(cn.c.cfg.Timeout)
		err = cn.w.Flush()
	}
	if err != nil {
		cn.kill()
		return t.fail(&Error{Command: "DATA", Temporary: true, Err: err})
	}
	cn.tr.client(".")
	return cn.settleMessage(t.res, accepted, "DATA", `no reply after the final "."`)
}

// settleMessage reads the replies to the end of a message (the final "."
// or "BDAT <n> LAST") within DataTimeout each: one for SMTP, one per
// accepted recipient in RCPT TO order for LMTP (RFC 2033 section 4.2). A
// 2xx is Delivered, a 4xx Deferred, a 5xx Rejected. A reply missing, or
// one that cannot answer (1xx, 3xx), leaves every recipient still
// undecided Unknown: the server may have the message (RFC 1047). A 421
// closes the connection once the replies are read, and is returned.
func (cn *Conn) settleMessage(res *Result, accepted []int, cmd, lostText string) (*Result, error) {
	n := 1
	if cn.lmtp {
		n = len(accepted)
	}
	var closing *Error
	for k := range n {
		who := accepted
		if cn.lmtp {
			who = accepted[k : k+1]
		}
		r, e := cn.groupReply(cmd, cn.c.cfg.DataTimeout)
		switch {
		case e == nil:
			for _, i := range who {
				res.Rcpts[i] = RcptResult{Addr: res.Rcpts[i].Addr, Status: Delivered, Reply: r}
			}
		case !e.hasReply():
			return cn.lost(res, cmd, lostText, e.Err)
		default:
			cn.settle(res, who, e)
			if e.Code == 421 && closing == nil {
				closing = e
			}
		}
	}
	if closing != nil {
		cn.kill()
		return res, closing
	}
	return res, nil
}

// lost closes the connection after the message may have reached the
// server and settles every recipient not yet decided as Unknown.
func (cn *Conn) lost(res *Result, cmd, text string, err error) (*Result, error) {
	cn.kill()
	e := &Error{Command: cmd, Text: text, Err: err}
	for i := range res.Rcpts {
		if res.Rcpts[i].Status == 0 {
			res.Rcpts[i] = RcptResult{Addr: res.Rcpts[i].Addr, Status: Unknown, Err: e}
		}
	}
	return res, e
}

// bodyChunk is how much of a body is written under one deadline.
const bodyChunk = 64 << 10

// writeBody writes b through the buffered writer in chunks, each with a
// fresh Timeout: a deadline bounds a stalled server, not the size of the
// message, and the one set before the commit hook may already be spent
// (RFC 5321 section 4.5.3.2.5 gives each data block its own timeout).
// bufio.Writer passes a chunk larger than its free space straight to the
// socket when it holds nothing.
func (cn *Conn) writeBody(b []byte) error {
	for len(b) > 0 {
		n := min(len(b), bodyChunk)
		cn.deadline(cn.c.cfg.Timeout)
		if _, err := cn.w.Write(b[:n]); err != nil {
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

// deferFrom marks the undecided recipients among idx Deferred.
func (cn *Conn) deferFrom(res *Result, idx []int, e *Error) {
	for _, j := range idx {
		if res.Rcpts[j].Status == 0 {
			res.Rcpts[j].Status, res.Rcpts[j].Err, res.Rcpts[j].Reply = Deferred, e, e.Reply()
		}
	}
}

// settle applies one reply to the recipients idx: 4xx Deferred, 5xx
// Rejected.
func (cn *Conn) settle(res *Result, idx []int, e *Error) {
	st := Rejected
	if e.Temporary {
		st = Deferred
	}
	for _, i := range idx {
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

// Reset sends RSET, ending any transaction; a Pool calls it before
// reusing a connection without PIPELINING, which also proves the
// connection is still alive (a pipelining one sends RSET with its next
// group instead). RSET keeps the session, EHLO or LHLO included (RFC 5321
// section 4.1.1.5). The error is an *Error for "RSET".
func (cn *Conn) Reset() error {
	if cn.broken {
		return &Error{Command: "RSET", Temporary: true, Err: errors.New("connection is closed")}
	}
	if _, _, err := cn.cmd(250, "RSET"); err != nil {
		e := wireError("RSET", err)
		cn.kill()
		return e
	}
	cn.needRset = false
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
	if err == nil {
		return false
	}
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
	cn.writeCmd("QUIT")
	if err := cn.w.Flush(); err != nil {
		return wireError("QUIT", err)
	}
	if _, _, err := cn.readReply(221); err != nil {
		return wireError("QUIT", err)
	}
	_, _ = io.Copy(io.Discard, cn.r.R)
	return nil
}

// needsUTF8 reports whether an envelope address is not plain ASCII, which
// is when MAIL FROM must carry SMTPUTF8 (RFC 6531 section 3.4).
func needsUTF8(from string, to []string) bool {
	if !isASCII(from) {
		return true
	}
	for _, a := range to {
		if !isASCII(a) {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// mailParams returns the MAIL FROM parameters: BODY=8BITMIME when the
// server offers 8BITMIME (RFC 6152), and SMTPUTF8 when it offers SMTPUTF8
// and an address needs it.
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
