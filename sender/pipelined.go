package sender

import (
	"context"
)

// sendPipelined is Send for a server that offers PIPELINING (RFC 2920):
// MAIL FROM, every RCPT TO and DATA leave in one write (writeGroup), and
// the replies are read in order afterwards, so a message costs two round
// trips (the group, then the body) instead of one per command. DATA is
// the group's last command because the body may only follow its 354 (RFC
// 2920 section 3.1); when no RCPT TO was accepted the server refuses DATA
// and the body is not sent (and Send resets the transaction). The
// outcomes are those of sendStepwise: until the 354, nothing of the
// message has left, so a lost connection leaves the recipients Deferred.
func (cn *Conn) sendPipelined(ctx context.Context, t *txn) (*Result, error) {
	if e := cn.writeGroup(t); e != nil {
		return t.fail(e)
	}
	if _, _, err := cn.reply(250); err != nil {
		e := cn.mailError(cn.cmdError("MAIL FROM", err), t)
		cn.drain(len(t.sent))
		return t.fail(e)
	}
	accepted, e := cn.rcptReplies(t)
	if e != nil {
		return t.fail(e)
	}
	return cn.dataReply(ctx, t, accepted)
}

// writeGroup writes MAIL FROM, the RCPT TO of the recipients sent and
// DATA, and flushes them in one write. A write that fails on a reused
// connection found it dead: that error wraps staleConnError, for a Pool
// to redial without counting an attempt.
func (cn *Conn) writeGroup(t *txn) *Error {
	// Before the first write: a large group flushes itself while it is
	// being written, and must not run into an older, spent deadline.
	cn.deadline(cn.c.cfg.Timeout)
	cn.writeMail(t)
	for _, i := range t.sent {
		cn.writeCmd("RCPT TO:<", t.to[i], ">")
	}
	cn.writeCmd("DATA")
	cn.deadline(cn.c.cfg.Timeout)
	if err := cn.w.Flush(); err != nil {
		cn.kill()
		if cn.txns > 1 {
			err = &staleConnError{err}
		}
		return &Error{Command: "MAIL FROM", Temporary: true, Err: err}
	}
	return nil
}

// rcptReplies reads the replies to the RCPT TO of a pipelined group and
// returns the indexes of the accepted recipients. A recipient accepted
// after a 452 is kept: the server delivers to it with this transaction,
// so it must not be sent again. A lost connection defers the rest and is
// returned.
func (cn *Conn) rcptReplies(t *txn) (accepted []int, lost *Error) {
	var over *Error // the first 452: it ends the batch (RFC 5321 section 4.5.3.1.10)
	for k, i := range t.sent {
		_, _, err := cn.reply(25)
		if err == nil {
			accepted = append(accepted, i)
			continue
		}
		e := cn.cmdError("RCPT TO", err)
		if cn.broken {
			cn.deferFrom(t.res, t.sent[k:], e)
			return accepted, t.res.firstErr()
		}
		over = refuseRcpt(&t.res.Rcpts[i], e, over)
	}
	return accepted, nil
}

// dataReply reads the reply to the group's DATA and, on 354, sends the
// body. A DATA that went through without an accepted recipient can only
// be ended by closing the connection, since DATA cannot end without a
// body.
func (cn *Conn) dataReply(ctx context.Context, t *txn, accepted []int) (*Result, error) {
	_, _, err := cn.reply(354)
	if len(accepted) == 0 {
		if err == nil {
			cn.kill()
		} else {
			_ = cn.cmdError("DATA", err)
		}
		return t.res, nil
	}
	if err != nil {
		e := cn.cmdError("DATA", err)
		cn.settle(t.res, accepted, e)
		if cn.broken {
			return t.fail(e)
		}
		return t.res, nil
	}
	if err := ctx.Err(); err != nil {
		// The server waits for a body; only closing ends that safely.
		cn.kill()
		return t.fail(&Error{Command: "DATA", Temporary: true, Err: err})
	}
	return cn.body(t, accepted)
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
		_, _, err := cn.reply(25)
		if err == nil {
			cn.open = true // an older transaction goes on: Send resets it
		} else if !wireError("", err).hasReply() {
			cn.kill()
			return
		}
	}
	if _, _, err := cn.reply(354); err == nil || !wireError("", err).hasReply() {
		cn.kill()
	}
}
