package sender

import (
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"time"
)

// oneWrite is the largest message copied behind its commands so that the
// whole group leaves in one write; a larger one is written after them, so
// a big attachment is never held twice.
const oneWrite = 256 << 10

// sendChunked is Send for a server that offers CHUNKING and PIPELINING
// (RFC 3030, RFC 2920): RSET (when the connection carried a transaction),
// MAIL FROM, every RCPT TO and "BDAT <size> LAST" with the message leave in
// one write, and the replies are read in order, so a message costs one
// round trip and needs no dot-stuffing.
//
// The message leaves before any reply is read, which moves the point of
// no return: the commit hook runs before the write, and once the write is
// complete the server may accept the message at any time, so a connection
// lost before the reply to BDAT leaves every recipient not yet refused
// Unknown (with DATA, a loss before the final "." was a plain retry). A
// server that refuses MAIL FROM or every RCPT TO still reads and drops the
// chunk (RFC 3030 section 2), answering BDAT with an error. A write that
// fails is a retry: the server cannot accept an incomplete LAST chunk.
func (cn *Conn) sendChunked(ctx context.Context, res *Result, from string, msg []byte, fail func(*Error) (*Result, error)) (*Result, error) {
	to := make([]string, len(res.Rcpts))
	var sent []int // recipients whose RCPT TO goes out
	for i := range res.Rcpts {
		to[i] = res.Rcpts[i].Addr
		if err := checkAddr(to[i]); err != nil {
			res.Rcpts[i].Status, res.Rcpts[i].Err = Rejected, &Error{Command: "RCPT TO", Err: err}
			continue
		}
		sent = append(sent, i)
	}
	if len(sent) == 0 {
		return res, nil
	}
	stale := false
	if cn.needRset && cn.raw != nil {
		// The server closed or reset the connection, or spoke, since its
		// last reply (peek_unix.go); the buffered check below covers what
		// was read already.
		stale, _ = peekStale(cn.raw.Conn)
	}
	if stale || cn.sc.Text.R.Buffered() > 0 {
		// The server spoke unasked after its last reply (a "421 too many
		// messages" before it closes, say): the connection is out of
		// step, and nothing of this transaction has left, so a Pool
		// retries at once on a new one. Found here it costs nothing;
		// found in the replies to the group it would leave the message
		// Unknown.
		cn.kill()
		return fail(&Error{Command: "RSET", Temporary: true, Err: &staleConnError{errors.New("the server closed the connection or spoke out of turn")}})
	}
	rset := cn.needRset
	if rset && time.Since(cn.lastReply) > foldWithin {
		// Idle long enough to have been dropped: find out with a lone RSET,
		// which a Pool retries at once on a new connection when it fails.
		if err := cn.Reset(); err != nil {
			e := asErr(err)
			if !e.hasReply() {
				e.Err = &staleConnError{e.Err}
			}
			return fail(e)
		}
		rset = false
	}
	if err := cn.commitNow(); err != nil {
		return fail(err)
	}

	w := cn.sc.Text.W
	cn.deadline(cn.c.cfg.Timeout)
	// The commands and, up to oneWrite bytes, the message go to the socket
	// in one write: through the 4 KiB bufio.Writer a message of a few KiB
	// took two, and a write is a tenth of a send's CPU on loopback.
	group := make([]byte, 0, 256+len(to)*64+min(len(msg), oneWrite))
	cmd := func(line string) {
		cn.tr.note("C: ", line)
		group = append(append(group, line...), '\r', '\n')
	}
	if rset {
		cmd("RSET")
	}
	cmd("MAIL FROM:<" + from + ">" + cn.mailParams(from, to))
	for _, i := range sent {
		cmd("RCPT TO:<" + to[i] + ">")
	}
	cmd(fmt.Sprintf("BDAT %d LAST", len(msg)))
	cn.tr.note("C: ", fmt.Sprintf("[message, %d bytes]", len(msg)))
	rest := msg
	if len(msg) <= oneWrite {
		group, rest = append(group, msg...), nil
	}
	// bufio.Writer passes a write larger than its free space straight to
	// the socket when it holds nothing, as here after the last Flush.
	err := cn.writeBody(w, group)
	if err == nil {
		err = cn.writeBody(w, rest)
	}
	if err == nil {
		cn.deadline(cn.c.cfg.Timeout)
		err = w.Flush()
	}
	if err != nil {
		cn.kill()
		if rset {
			// The leading RSET found the connection dead; the chunk was cut
			// short, so nothing can have been accepted.
			return fail(&Error{Command: "RSET", Temporary: true, Err: &staleConnError{err}})
		}
		return fail(&Error{Command: "BDAT", Temporary: true, Err: err})
	}
	cn.needRset = true

	// From here on the server may have the whole message. lost settles
	// every recipient not yet refused as Unknown when a reply is missing.
	lost := func(cmd string, err error) (*Result, error) {
		cn.kill()
		e := &Error{Command: cmd, Text: "no reply after the message was sent", Err: err}
		for i := range res.Rcpts {
			if res.Rcpts[i].Status == 0 {
				res.Rcpts[i] = RcptResult{Addr: res.Rcpts[i].Addr, Status: Unknown, Err: e}
			}
		}
		return res, e
	}
	// Every reply is read, even after a 421: a server that says it is
	// closing may still run the commands it had already read (go-smtp
	// does), so only the reply to BDAT tells whether the message went. A
	// 421 closes the connection once the group is read.
	closeAfter := false
	if rset {
		// A refused RSET does not stop the transaction that follows.
		if _, e := cn.groupReply("RSET", cn.c.cfg.Timeout); e != nil {
			if !e.hasReply() {
				return lost("RSET", e.Err)
			}
			closeAfter = closeAfter || e.Code == 421
		}
	}
	if _, e := cn.groupReply("MAIL FROM", cn.c.cfg.Timeout); e != nil {
		if !e.hasReply() {
			return lost("MAIL FROM", e.Err)
		}
		e.fatal = e.Code/100 == 5
		// No transaction: the RCPT TO and BDAT replies are refusals to
		// read past, unless the server was still in another transaction.
		if cn.drainChunked(len(sent)) {
			return lost("BDAT", fmt.Errorf("the server went on after refusing MAIL FROM (%d)", e.Code))
		}
		if e.Code == 421 {
			cn.kill()
		}
		return fail(e)
	}
	var accepted []int
	var over *Error // the first 452: it ends the batch (RFC 5321 section 4.5.3.1.10)
	for _, i := range sent {
		_, e := cn.groupReply("RCPT TO", cn.c.cfg.Timeout)
		if e == nil {
			accepted = append(accepted, i)
			continue
		}
		if !e.hasReply() {
			return lost("RCPT TO", e.Err)
		}
		closeAfter = closeAfter || e.Code == 421
		over = refuseRcpt(&res.Rcpts[i], e, over)
	}
	r, e := cn.groupReply("BDAT", cn.c.cfg.DataTimeout)
	if closeAfter || e != nil && e.Code == 421 {
		defer cn.kill()
	}
	if e != nil {
		if !e.hasReply() {
			return lost("BDAT", e.Err)
		}
		if len(accepted) == 0 {
			return res, nil // the refusal of a chunk without recipients
		}
		cn.settle(res, accepted, e)
		if e.Code == 421 {
			return res, e
		}
		return res, nil
	}
	if len(accepted) == 0 {
		// A server that accepts a message without recipients is out of
		// step with us; nothing was delivered.
		cn.kill()
		return res, nil
	}
	for _, i := range accepted {
		res.Rcpts[i] = RcptResult{Addr: res.Rcpts[i].Addr, Status: Delivered, Reply: r}
	}
	return res, nil
}

// groupReply reads the reply to cmd of a chunked group within d and
// traces it. It returns the reply of a 2xx (RFC 5321 section 4.2.1: any
// 2xx is a success) with a nil *Error; the *Error of a 4xx or 5xx; and an
// *Error without a reply (hasReply is false) when there is none, or when
// its code cannot answer cmd (1xx, 3xx): the server is then out of step
// with the group, and may have taken the message as much as after a
// silence.
func (cn *Conn) groupReply(cmd string, d time.Duration) (Reply, *Error) {
	cn.deadline(d)
	code, text, err := cn.sc.Text.ReadResponse(2)
	var te *textproto.Error
	if errors.As(err, &te) {
		code, text = te.Code, te.Msg
	}
	if code != 0 {
		cn.tr.reply(code, text)
		cn.lastReply = time.Now()
	}
	switch {
	case err == nil:
		return parseReply(code, text), nil
	case code/100 == 4 || code/100 == 5:
		return Reply{}, wireError(cmd, err)
	case code != 0:
		err = fmt.Errorf("reply %d is out of step with the commands", code)
	}
	return Reply{}, &Error{Command: cmd, Temporary: true, Err: err}
}

// drainChunked reads the replies to the n RCPT TO and the BDAT that
// followed a refused MAIL FROM, and reports whether the server may have
// accepted the message all the same: without a transaction it refuses
// every one, but a server still in an older transaction (its MAIL FROM
// was "nested") takes the recipients and the chunk. An accepted RCPT TO
// therefore counts until a refused BDAT says otherwise, and a lost reply
// after it is an unknown outcome. Any surprise, and a lost connection,
// close the connection.
func (cn *Conn) drainChunked(n int) (mayHave bool) {
	took := false // a RCPT TO was accepted
	for range n {
		_, e := cn.groupReply("RCPT TO", cn.c.cfg.Timeout)
		if e == nil {
			took = true
			continue
		}
		if !e.hasReply() {
			cn.kill()
			return took
		}
	}
	_, e := cn.groupReply("BDAT", cn.c.cfg.DataTimeout)
	switch {
	case e == nil:
		cn.kill()
		return true
	case !e.hasReply():
		cn.kill()
		return took
	case took:
		cn.kill() // refused in the end, but out of step
	}
	return false
}

// asErr returns err as an *Error, wrapping any other error as a temporary
// one for "RSET".
func asErr(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Command: "RSET", Temporary: true, Err: err}
}
