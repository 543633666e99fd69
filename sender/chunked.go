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
// (RFC 3030, RFC 2920): MAIL FROM, every RCPT TO and "BDAT <size> LAST"
// with the message leave in one write, and the replies are read in order,
// so a message costs one round trip and needs no dot-stuffing.
//
// The message leaves before any reply is read, which moves the point of
// no return: the commit hook runs before the write, and once the write is
// complete the server may accept the message at any time. The replies
// tell how far it got. A server processes the commands in order, so one
// that closed the connection before it answered MAIL FROM and every RCPT
// TO never reached BDAT: the recipients not refused are Deferred
// (chunkLost), as they are when a 421 came before a BDAT reply that did
// not (settleMessage). Once every command in front of BDAT was answered,
// a missing reply leaves the accepted recipients Unknown; so does a reply
// that did not come in time, or came out of step, at any point, since the
// server may still be at work on the message. A server that refuses MAIL
// FROM or every RCPT TO still reads and drops the chunk (RFC 3030 section
// 2), answering BDAT with an error. A write that fails is a retry: the
// server cannot accept an incomplete LAST chunk.
//
// The steps: reuseCheck, the commit hook, writeChunked, then
// chunkedReplies.
func (cn *Conn) sendChunked(t *txn) (*Result, error) {
	if e := cn.reuseCheck(); e != nil {
		return t.fail(e)
	}
	if e := cn.commitNow(); e != nil {
		return t.fail(e)
	}
	if e := cn.writeChunked(t); e != nil {
		return t.fail(e)
	}
	return cn.chunkedReplies(t)
}

// reuseCheck makes sure a reused connection is alive before a group that
// carries the message is written: found dead here, the connection costs a
// redial (the error wraps staleConnError), not the message.
func (cn *Conn) reuseCheck() *Error {
	if cn.txns <= 1 {
		return nil
	}
	// The server closed or reset the connection, or spoke, since its last
	// reply (peek_unix.go); the buffered check covers what was read
	// already. Speaking unasked (a "421 too many errors" before it
	// closes, say) puts the connection out of step.
	stale, _ := peekStale(cn.raw.Conn)
	if stale || cn.r.R.Buffered() > 0 {
		cn.kill()
		return &Error{Command: "MAIL FROM", Temporary: true, Err: &staleConnError{errors.New("the server closed the connection or spoke out of turn")}}
	}
	if time.Since(cn.lastReply) <= idleProbe {
		return nil
	}
	return cn.noop()
}

// writeChunked writes the group and the message. The commands and, up to
// oneWrite bytes, the message go to the socket in one write: through the
// 4 KiB bufio.Writer a message of a few KiB took two, and a write is a
// tenth of a send's CPU on loopback.
func (cn *Conn) writeChunked(t *txn) *Error {
	cn.deadline(cn.c.cfg.Timeout)
	msg := t.msg
	group := make([]byte, 0, 256+len(t.sent)*64+min(len(msg), oneWrite))
	group = cn.appendMail(group, t)
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
	if cn.txns > 1 {
		// The reused connection was dead; the chunk was cut short, so
		// nothing can have been accepted.
		err = &staleConnError{err}
	}
	return &Error{Command: "BDAT", Temporary: true, Err: err}
}

// chunkedReplies reads the replies to a chunked group in order and
// settles the recipients. Every reply is read, even after a 421: a server
// that says it is closing may still run the commands it had already read
// (go-smtp does), so only the reply to BDAT tells whether the message
// went. A 421 closes the connection once the group is read.
func (cn *Conn) chunkedReplies(t *txn) (*Result, error) {
	if _, e := cn.groupReply("MAIL FROM", cn.c.cfg.Timeout); e != nil {
		return cn.mailRefused(t, e)
	}
	accepted, closing, e := cn.chunkedRcptReplies(t)
	if e != nil {
		return cn.chunkLost(t, e)
	}
	if closing {
		defer cn.kill()
	}
	if len(accepted) == 0 {
		return cn.emptyChunkReply(t.res)
	}
	return cn.settleMessage(t, accepted, "BDAT", lostSent, closing)
}

// chunkLost settles a chunked group whose reply e, to MAIL FROM or a RCPT
// TO, is missing. A server that closed the connection (closedByPeer)
// never reached BDAT, so whoever is not refused is Deferred; on a reused
// connection that did not answer MAIL FROM, the error wraps
// staleConnError. A reply that did not come in time, or came out of
// step, leaves them Unknown: the server may still take the message.
func (cn *Conn) chunkLost(t *txn, e *Error) (*Result, error) {
	cn.kill()
	if !closedByPeer(e.Err) {
		return cn.lost(t.res, e.Command, lostSent, e.Err)
	}
	if e.Command == "MAIL FROM" && cn.txns > 1 {
		e.Err = &staleConnError{e.Err}
	}
	return t.fail(e)
}

// mailRefused settles a chunked group whose MAIL FROM got e. Without a
// transaction the RCPT TO and BDAT replies are refusals to read past,
// unless the server was still in another transaction (drainChunked).
func (cn *Conn) mailRefused(t *txn, e *Error) (*Result, error) {
	if !e.hasReply() {
		return cn.chunkLost(t, e)
	}
	e = cn.mailError(e, t)
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
