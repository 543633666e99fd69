package sender

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// oneWrite is the largest message copied behind its commands so that the
// whole group leaves in one write; a larger one is written after them, so
// a big attachment is never held twice.
const oneWrite = 256 << 10

// lostSent is the text of an Unknown outcome once a chunked group has
// left: the server may have the message.
const lostSent = "no reply after the message was sent"

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
//
// The steps: reuseCheck, the commit hook, writeChunked, then
// chunkedReplies.
func (cn *Conn) sendChunked(t *txn) (*Result, error) {
	rset, e := cn.reuseCheck()
	if e != nil {
		return t.fail(e)
	}
	if e := cn.commitNow(); e != nil {
		return t.fail(e)
	}
	if e := cn.writeChunked(t, rset); e != nil {
		return t.fail(e)
	}
	cn.needRset = true
	return cn.chunkedReplies(t, rset)
}

// reuseCheck makes sure a reused connection is alive before a group that
// carries the message is written, and reports whether the group must
// lead with RSET. A connection found dead here costs a redial (the error
// wraps staleConnError); found dead in the replies to the group, it would
// leave the message Unknown.
func (cn *Conn) reuseCheck() (rset bool, e *Error) {
	if !cn.needRset {
		return false, nil
	}
	// The server closed or reset the connection, or spoke, since its last
	// reply (peek_unix.go); the buffered check covers what was read
	// already. Speaking unasked (a "421 too many messages" before it
	// closes, say) puts the connection out of step.
	stale, _ := peekStale(cn.raw.Conn)
	if stale || cn.r.R.Buffered() > 0 {
		cn.kill()
		return false, &Error{Command: "RSET", Temporary: true, Err: &staleConnError{errors.New("the server closed the connection or spoke out of turn")}}
	}
	if time.Since(cn.lastReply) <= foldWithin {
		return true, nil
	}
	// Idle long enough to have been dropped: find out with a lone RSET,
	// which a Pool retries at once on a new connection when it fails.
	if err := cn.Reset(); err != nil {
		e := asErr(err)
		if !e.hasReply() {
			e.Err = &staleConnError{e.Err}
		}
		return false, e
	}
	return false, nil
}

// writeChunked writes the group and the message. The commands and, up to
// oneWrite bytes, the message go to the socket in one write: through the
// 4 KiB bufio.Writer a message of a few KiB took two, and a write is a
// tenth of a send's CPU on loopback.
func (cn *Conn) writeChunked(t *txn, rset bool) *Error {
	cn.deadline(cn.c.cfg.Timeout)
	msg := t.msg
	group := make([]byte, 0, 256+len(t.sent)*64+min(len(msg), oneWrite))
	if rset {
		group = cn.appendCmd(group, "RSET")
	}
	group = cn.appendCmd(group, "MAIL FROM:<", t.from, ">", cn.mailParams(t.from, t.to))
	for _, i := range t.sent {
		group = cn.appendCmd(group, "RCPT TO:<", t.to[i], ">")
	}
	start := len(group)
	group = append(group, "BDAT "...)
	group = append(strconv.AppendInt(group, int64(len(msg)), 10), " LAST"...)
	if cn.tr != nil {
		cn.tr.client(string(group[start:]))
	}
	group = append(group, '\r', '\n')
	if cn.tr != nil {
		cn.tr.client("[message, " + strconv.Itoa(len(msg)) + " bytes]")
	}
	rest := msg
	if len(msg) <= oneWrite {
		group, rest = append(group, msg...), nil
	}
	err := cn.writeBody(group)
	if err == nil {
		err = cn.writeBody(rest)
	}
	if err == nil {
		cn.deadline(cn.c.cfg.Timeout)
		err = cn.w.Flush()
	}
	if err == nil {
		return nil
	}
	cn.kill()
	if rset {
		// The leading RSET found the connection dead; the chunk was cut
		// short, so nothing can have been accepted.
		return &Error{Command: "RSET", Temporary: true, Err: &staleConnError{err}}
	}
	return &Error{Command: "BDAT", Temporary: true, Err: err}
}

// chunkedReplies reads the replies to a chunked group in order and
// settles the recipients. Every reply is read, even after a 421: a server
// that says it is closing may still run the commands it had already read
// (go-smtp does), so only the reply to BDAT tells whether the message
// went. A 421 closes the connection once the group is read. From here on
// the server may have the whole message, so a missing reply leaves every
// recipient not yet refused Unknown (lost).
func (cn *Conn) chunkedReplies(t *txn, rset bool) (*Result, error) {
	res := t.res
	closeAfter := false
	if rset {
		// A refused RSET does not stop the transaction that follows.
		if _, e := cn.groupReply("RSET", cn.c.cfg.Timeout); e != nil {
			if !e.hasReply() {
				return cn.lost(res, "RSET", lostSent, e.Err)
			}
			closeAfter = e.Code == 421
		}
	}
	if _, e := cn.groupReply("MAIL FROM", cn.c.cfg.Timeout); e != nil {
		return cn.mailRefused(t, e)
	}
	accepted, closing, e := cn.chunkedRcptReplies(t)
	if e != nil {
		return cn.lost(res, "RCPT TO", lostSent, e.Err)
	}
	if closeAfter || closing {
		defer cn.kill()
	}
	if len(accepted) == 0 {
		return cn.emptyChunkReply(res)
	}
	return cn.settleMessage(res, accepted, "BDAT", lostSent)
}

// mailRefused settles a chunked group whose MAIL FROM got e. Without a
// transaction the RCPT TO and BDAT replies are refusals to read past,
// unless the server was still in another transaction (drainChunked).
func (cn *Conn) mailRefused(t *txn, e *Error) (*Result, error) {
	if !e.hasReply() {
		return cn.lost(t.res, "MAIL FROM", lostSent, e.Err)
	}
	e.fatal = e.Code/100 == 5
	if cn.drainChunked(len(t.sent)) {
		return cn.lost(t.res, "BDAT", lostSent, fmt.Errorf("the server went on after refusing MAIL FROM (%d)", e.Code))
	}
	if e.Code == 421 {
		cn.kill()
	}
	return t.fail(e)
}

// chunkedRcptReplies reads the replies to the RCPT TO of a chunked group
// and returns the indexes of the accepted recipients, whether a 421 asked
// to close, and the *Error of a missing reply.
func (cn *Conn) chunkedRcptReplies(t *txn) (accepted []int, closing bool, lost *Error) {
	var over *Error // the first 452: it ends the batch (RFC 5321 section 4.5.3.1.10)
	for _, i := range t.sent {
		_, e := cn.groupReply("RCPT TO", cn.c.cfg.Timeout)
		if e == nil {
			accepted = append(accepted, i)
			continue
		}
		if !e.hasReply() {
			return accepted, closing, e
		}
		closing = closing || e.Code == 421
		over = refuseRcpt(&t.res.Rcpts[i], e, over)
	}
	return accepted, closing, nil
}

// emptyChunkReply reads the one reply to a chunk that no recipient was
// accepted for, LMTP included: a refusal. A server that accepts it is out
// of step with the client, though nothing was delivered.
func (cn *Conn) emptyChunkReply(res *Result) (*Result, error) {
	_, e := cn.groupReply("BDAT", cn.c.cfg.DataTimeout)
	switch {
	case e == nil:
		cn.kill()
	case !e.hasReply():
		return cn.lost(res, "BDAT", lostSent, e.Err)
	case e.Code == 421:
		cn.kill()
	}
	return res, nil
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
