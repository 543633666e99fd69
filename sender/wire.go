package sender

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"time"
)

// setText puts the reader and writer of the conversation on c: the
// socket, or the TLS connection over it once TLS has started.
func (cn *Conn) setText(c net.Conn) {
	cn.r = textproto.NewReader(bufio.NewReader(c))
	cn.w = bufio.NewWriter(c)
}

// appendCmd appends the command line made of parts to b, with its CRLF,
// and traces it. Building the line in place costs no allocation of its
// own when tracing is off.
func (cn *Conn) appendCmd(b []byte, parts ...string) []byte {
	start := len(b)
	for _, p := range parts {
		b = append(b, p...)
	}
	if cn.tr != nil {
		cn.tr.client(string(b[start:]))
	}
	return append(b, '\r', '\n')
}

// writeCmd writes one command line into the buffered writer without
// flushing it, so that a pipelined group leaves in one write.
func (cn *Conn) writeCmd(parts ...string) {
	_, _ = cn.w.Write(cn.appendCmd(cn.w.AvailableBuffer(), parts...))
}

// appendMail appends the MAIL FROM line of t to b, with its parameters
// and CRLF, and traces it; it marks the transaction open.
func (cn *Conn) appendMail(b []byte, t *txn) []byte {
	start := len(b)
	b = append(b, "MAIL FROM:<"...)
	b = append(b, t.from...)
	b = cn.appendMailParams(append(b, '>'), t.from, t.to, t.size)
	if cn.tr != nil {
		cn.tr.client(string(b[start:]))
	}
	cn.open = true
	return append(b, '\r', '\n')
}

// writeMail writes the MAIL FROM line of t without flushing it.
func (cn *Conn) writeMail(t *txn) {
	_, _ = cn.w.Write(cn.appendMail(cn.w.AvailableBuffer(), t))
}

// cmd sends one command, waits for its reply within Timeout and returns
// it; err is a *textproto.Error when the code does not match expect (a
// prefix, as in textproto.Reader.ReadResponse), or the connection's error.
func (cn *Conn) cmd(expect int, parts ...string) (code int, text string, err error) {
	cn.deadline(cn.c.cfg.Timeout)
	cn.writeCmd(parts...)
	if err := cn.w.Flush(); err != nil {
		return 0, "", err
	}
	return cn.reply(expect)
}

// reply reads one reply within Timeout (RFC 5321 section 4.5.3.2 bounds
// each reply, not a pipelined group: a relay that checks each recipient
// slowly is not a dead one) and traces it.
func (cn *Conn) reply(expect int) (code int, text string, err error) {
	cn.deadline(cn.c.cfg.Timeout)
	return cn.readReply(expect)
}

// readReply reads one reply under the deadline already set and traces it.
func (cn *Conn) readReply(expect int) (code int, text string, err error) {
	code, text, err = cn.r.ReadResponse(expect)
	if err != nil {
		// Only here: errors.As makes te escape, which would cost every
		// reply an allocation.
		var te *textproto.Error
		if errors.As(err, &te) {
			code, text = te.Code, te.Msg
		}
	}
	if code != 0 {
		cn.tr.server(code, text)
		cn.lastReply = time.Now()
		if code >= 400 && code < 600 {
			cn.refusals++
		}
	}
	return code, text, err
}

// groupReply reads the reply to cmd within d. It returns the reply of a
// 2xx (RFC 5321 section 4.2.1: any 2xx is a success) with a nil *Error;
// the *Error of a 4xx or 5xx; and an *Error without a reply (hasReply is
// false) when there is none, or when its code cannot answer cmd (1xx,
// 3xx): the server is then out of step with the client, and may have
// taken a message that was sent as much as after a silence.
func (cn *Conn) groupReply(cmd string, d time.Duration) (Reply, *Error) {
	cn.deadline(d)
	code, text, err := cn.readReply(2)
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

// deadline bounds the next write or read: every command and every reply
// sets its own, so an idle connection never carries a spent one into its
// next transaction.
func (cn *Conn) deadline(d time.Duration) {
	_ = cn.raw.SetDeadline(time.Now().Add(d))
}

// kill closes the socket without QUIT.
func (cn *Conn) kill() {
	if cn.broken {
		return
	}
	cn.broken = true
	_ = cn.raw.Close()
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
