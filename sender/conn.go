package sender

import (
	"bufio"
	"bytes"
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
	// eightBit and utf8 record the server's 8BITMIME and SMTPUTF8, which
	// decide the MAIL FROM parameters (appendMailParams).
	eightBit, utf8 bool
	// sizeOffered records the server's SIZE (RFC 1870): MAIL FROM then
	// declares SIZE=; sizeLimit is its limit, 0 for none.
	sizeOffered bool
	sizeLimit   int64
	// chunking is set when the server offers CHUNKING and PIPELINING and
	// Config.NoChunking is not: Send then uses sendChunked.
	chunking bool
	// txns counts the transactions begun on the connection: from the
	// second on, it is reused.
	txns int
	// open is set while a transaction may be open on the server: from
	// MAIL FROM until the reply that ends the message, or an RSET.
	open bool
	// refusals counts the server's 4xx and 5xx replies on the connection;
	// a Pool closes it at maxRefusals (see spent).
	refusals int
	// lastReply is when the server last answered: a reused connection
	// idle for longer than idleProbe is checked before a chunked group.
	lastReply time.Time
}

// idleProbe is how long a connection may have been silent before a
// chunked group, which carries the message, is preceded by a NOOP that
// proves the connection alive. Servers drop idle connections after tens of
// seconds or more, and one that closed is seen by peekStale anyway; the
// NOOP finds the connection a firewall dropped without a word, whose
// silence would otherwise leave the message Unknown. A variable so that
// tests can shorten it.
var idleProbe = time.Second

// maxRefusals is how many refusals a connection takes before a Pool
// closes it and opens a new one. Relays end a connection after some
// number of errors (Postfix at smtpd_hard_error_limit, 20 and less under
// stress; Exim at smtp_accept_max_nonmail, 10), with a 421 to the next
// command or without a word; a bulk list always has dead addresses, and
// a limit of the relay's is never what should end a connection.
const maxRefusals = 5

// spent reports whether the connection took maxRefusals refusals.
func (cn *Conn) spent() bool { return cn.refusals >= maxRefusals }

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
// When the relay offers SIZE (RFC 1870), MAIL FROM declares the
// message's size; a message over the relay's limit is not sent at all:
// its recipients are Rejected and the error, for "MAIL FROM", wraps a
// *SizeError, as does a refusal of the size by the relay. Neither is
// fatal.
//
// A rejected recipient (5xx) does not stop the others; a 4xx leaves that
// recipient Deferred with a temporary *Error. If no recipient is accepted,
// no message is sent. The returned error is non-nil when the transaction
// failed as a whole (MAIL FROM refused, connection lost, 421): every
// recipient not yet decided is then Deferred, and IsFatal tells whether
// the run must stop. A recipient is Unknown (RFC 1047), and the error
// non-nil, only when the server accepted its MAIL FROM and RCPT TO and
// the reply to the end of the message (the final "." or BDAT LAST) did
// not come; see sendChunked for a group sent in one write.
//
// A transaction that ends without that reply (every recipient refused,
// say) is followed by RSET at once, so that the connection is clean and
// a 421 to the RSET costs no message; a successful one needs none (RFC
// 5321 section 4.1.1.4). On a reused connection, a MAIL FROM that finds
// the connection closed (or gets 421) is an error that a Pool retries at
// once on a new connection: nothing of the message was accepted.
func (cn *Conn) Send(ctx context.Context, from string, to []string, msg []byte) (*Result, error) {
	res := &Result{Rcpts: make([]RcptResult, len(to)), Attempts: 1}
	for i, a := range to {
		res.Rcpts[i] = RcptResult{Addr: a}
	}
	fail := func(err *Error) (*Result, error) {
		st := Deferred
		if err.tooLarge() {
			st = Rejected
		}
		for i := range res.Rcpts {
			if res.Rcpts[i].Status == 0 {
				res.Rcpts[i].Status = st
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
	t := &txn{res: res, from: wfrom, to: wto, sent: sent, msg: msg, fail: fail}
	if cn.sizeOffered {
		t.size = wireSize(msg, cn.chunking)
		if cn.sizeLimit > 0 && t.size > cn.sizeLimit {
			return fail(&Error{Command: "MAIL FROM", Err: &SizeError{Size: t.size, Limit: cn.sizeLimit}})
		}
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
	cn.txns++
	var err error
	switch {
	case cn.chunking:
		res, err = cn.sendChunked(t)
	case cn.pipelining:
		res, err = cn.sendPipelined(ctx, t)
	default:
		res, err = cn.sendStepwise(ctx, t)
	}
	if cn.open && !cn.broken {
		// A failure closes the connection, which is all that matters.
		_ = cn.Reset()
	}
	return res, err
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
	// size is the message's size as SIZE= declares it (wireSize), 0
	// when the relay does not offer SIZE.
	size int64
	fail func(*Error) (*Result, error)
}

// sendStepwise is Send for a server without PIPELINING: one command, one
// reply. Send resets a transaction left open.
func (cn *Conn) sendStepwise(ctx context.Context, t *txn) (*Result, error) {
	res := t.res
	cn.deadline(cn.c.cfg.Timeout)
	cn.writeMail(t)
	err := cn.w.Flush()
	if err == nil {
		_, _, err = cn.reply(250)
	}
	if err != nil {
		return t.fail(cn.mailError(cn.cmdError("MAIL FROM", err), t))
	}
	accepted := cn.rcpts(ctx, t)
	if cn.broken {
		return t.fail(res.firstErr())
	}
	if len(accepted) == 0 {
		return res, nil
	}
	if err := ctx.Err(); err != nil {
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

// mailError classifies a refused MAIL FROM, after which no transaction
// is open (RFC 5321 section 3.3) unless the server goes on to accept a
// RCPT TO (drain, drainChunked). A 5xx is fatal: every message of the run
// has this sender. A refusal of the message's size (sizeCause) is this
// message's alone: permanent, not fatal. On a reused connection, a MAIL
// FROM without a reply, or with a 421, found the connection dead before
// anything of this transaction was accepted (a sendChunked group comes
// here only with a reply; chunkLost settles a missing one): the error
// wraps staleConnError, for a Pool to redial at once.
func (cn *Conn) mailError(e *Error, t *txn) *Error {
	if e.hasReply() {
		cn.open = false
	}
	switch {
	case cn.sizeCause(e, t, true):
	case e.Code/100 == 5:
		e.fatal = true
	case cn.txns > 1 && (!e.hasReply() || e.Code == 421):
		e.Temporary, e.Err = true, &staleConnError{e.Err}
	}
	return e
}

// sizeCause makes a *SizeError the cause of e when the relay refused the
// message for its size (RFC 1870 section 6.1): a 5xx with enhanced code
// 5.3.4, or 552 to a MAIL FROM that declared SIZE= (mail). It reports
// whether it did.
func (cn *Conn) sizeCause(e *Error, t *txn, mail bool) bool {
	if e.Code/100 != 5 || e.Enhanced != "5.3.4" && !(mail && cn.sizeOffered && e.Code == 552) {
		return false
	}
	e.Err = &SizeError{Size: t.size, Limit: cn.sizeLimit}
	return true
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
	return cn.settleMessage(t, accepted, "DATA", `no reply after the final "."`, false)
}

// settleMessage reads the replies to the end of a message (the final "."
// or "BDAT <n> LAST") within DataTimeout each: one for SMTP, one per
// accepted recipient in RCPT TO order for LMTP (RFC 2033 section 4.2). A
// 2xx is Delivered, a 4xx Deferred, a 5xx Rejected. A reply missing, or
// one that cannot answer (1xx, 3xx), leaves every recipient still
// undecided Unknown: the server may have the message (RFC 1047); except
// when closing says that the server answered 421 to a command in front
// of it, and then closed the connection before any reply here: a server
// that said it is closing did not take the message. A 421 here closes the
// connection once the replies are read, and is returned. The transaction
// is over with a reply to DATA's "." whatever it says (RFC 5321 section
// 4.1.1.4), and with a 2xx to BDAT; otherwise Send resets it.
func (cn *Conn) settleMessage(t *txn, accepted []int, cmd, lostText string, closing bool) (*Result, error) {
	res := t.res
	n := 1
	if cn.lmtp {
		n = len(accepted)
	}
	var closeErr *Error
	ok := false
	for k := range n {
		who := accepted
		if cn.lmtp {
			who = accepted[k : k+1]
		}
		r, e := cn.groupReply(cmd, cn.c.cfg.DataTimeout)
		switch {
		case e == nil:
			ok = true
			for _, i := range who {
				res.Rcpts[i] = RcptResult{Addr: res.Rcpts[i].Addr, Status: Delivered, Reply: r}
			}
		case !e.hasReply() && closing && k == 0 && closedByPeer(e.Err):
			cn.kill()
			return t.fail(e)
		case !e.hasReply():
			return cn.lost(res, cmd, lostText, e.Err)
		default:
			cn.sizeCause(e, t, false)
			cn.settle(res, who, e)
			if e.Code == 421 && closeErr == nil {
				closeErr = e
			}
		}
	}
	if ok || cmd == "DATA" {
		cn.open = false
	}
	if closeErr != nil {
		cn.kill()
		return res, closeErr
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

// Reset sends RSET, ending any transaction (RFC 5321 section 4.1.1.5);
// Send calls it after a transaction that ended without a reply to its
// message. RSET keeps the session, EHLO or LHLO included. A failure,
// whatever it is, closes the connection; the error is an *Error for
// "RSET".
func (cn *Conn) Reset() error {
	if cn.broken {
		return &Error{Command: "RSET", Temporary: true, Err: errors.New("connection is closed")}
	}
	if _, _, err := cn.cmd(250, "RSET"); err != nil {
		e := wireError("RSET", err)
		cn.kill()
		return e
	}
	cn.open = false
	return nil
}

// noop proves a reused connection alive with NOOP (RFC 5321 section
// 4.1.1.9) before a chunked group. Any reply but a 421 will do; without
// one, or with a 421, the connection is closed and the error wraps
// staleConnError.
func (cn *Conn) noop() *Error {
	_, _, err := cn.cmd(250, "NOOP")
	if err == nil {
		return nil
	}
	e := wireError("NOOP", err)
	if e.hasReply() && e.Code != 421 {
		return nil
	}
	cn.kill()
	e.Temporary, e.Err = true, &staleConnError{e.Err}
	return e
}

// staleConnError marks a reused connection found dead at the start of a
// transaction (by peekStale, NOOP, or a MAIL FROM that the closed
// connection did not answer): nothing of the transaction was accepted, so
// a Pool retries it at once on a new connection, without counting an
// attempt.
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
	// QUIT is a courtesy: a relay that does not answer it within two
	// seconds does not hold up the end of a run (a second Ctrl-C ends
	// mailrun within about that).
	cn.deadline(min(cn.c.cfg.Timeout, quitWait))
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

// quitWait bounds the wait for the reply to QUIT.
const quitWait = 2 * time.Second

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

// appendMailParams appends the MAIL FROM parameters to b: SIZE=size when
// the server offers SIZE (RFC 1870 section 6), BODY=8BITMIME when it
// offers 8BITMIME (RFC 6152), and SMTPUTF8 when it offers SMTPUTF8 and an
// address needs it.
func (cn *Conn) appendMailParams(b []byte, from string, to []string, size int64) []byte {
	if cn.sizeOffered {
		b = strconv.AppendInt(append(b, " SIZE="...), size, 10)
	}
	if cn.eightBit {
		b = append(b, " BODY=8BITMIME"...)
	}
	if cn.utf8 && needsUTF8(from, to) {
		b = append(b, " SMTPUTF8"...)
	}
	return b
}

// wireSize is the size of msg as SIZE= declares it (RFC 1870 section 5):
// with DATA, the octets after the 354 with every line ending in CRLF, not
// counting the dots of dot-stuffing nor the final "."; with BDAT, the
// chunk's octets.
func wireSize(msg []byte, chunked bool) int64 {
	n := int64(len(msg))
	if chunked || n == 0 {
		return n
	}
	n += int64(bytes.Count(msg, []byte{'\n'}) - bytes.Count(msg, []byte("\r\n")))
	if msg[len(msg)-1] != '\n' {
		n += 2 // dotStuff ends the last line
	}
	return n
}
