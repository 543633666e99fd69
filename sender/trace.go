package sender

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/wneessen/go-mail/log"
)

// redactedAuth is what go-mail logs instead of AUTH payloads.
const redactedAuth = "<SMTP auth data redacted>"

// tracer is the go-mail logger of one connection. It writes the
// conversation as "C: " and "S: " lines to the debug writer, if any, and
// remembers the last command so a failed dial can name its step. go-mail
// already hides AUTH payloads; the tracer also scrubs every known form of
// the password from each line, so a library change cannot leak it.
type tracer struct {
	w *traceWriter
	// tag is "[n] ", the connection's number within its Client, so that
	// the interleaved lines of concurrent connections stay readable.
	tag     string
	secrets []string

	mu       sync.Mutex
	last     string
	startTLS bool
	inDial   bool
}

func newTracer(w *traceWriter, secrets []string) *tracer {
	t := &tracer{w: w, secrets: secrets, inDial: true}
	if w != nil {
		t.tag = fmt.Sprintf("[%d] ", w.seq.Add(1))
	}
	return t
}

// traceWriter is the one Config.Debug writer of a Client, shared by all of
// its connections. Each connection's tracer has its own mutex for its own
// state, but the writer is common to all of them, so it needs one lock of
// its own: a bytes.Buffer or an *os.File shared by several connections
// would otherwise see concurrent writes. seq numbers the connections.
type traceWriter struct {
	mu  sync.Mutex
	w   io.Writer
	seq atomic.Int64
}

func newTraceWriter(w io.Writer) *traceWriter {
	if w == nil {
		return nil
	}
	return &traceWriter{w: w}
}

// writeLine writes one whole line under the lock, so lines of different
// connections never interleave within a line.
func (w *traceWriter) writeLine(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, _ = io.WriteString(w.w, s)
}

// Debugf receives every command and reply from go-mail's smtp client.
func (t *tracer) Debugf(l log.Log) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l.Direction == log.DirClientToServer {
		line := fmt.Sprintf(l.Format, l.Messages...)
		if t.inDial {
			verb, _, _ := strings.Cut(line, " ")
			verb = strings.ToUpper(verb)
			switch {
			case line == redactedAuth || verb == "AUTH":
				t.last = "AUTH"
			case verb == "EHLO" || verb == "HELO":
				t.last = "EHLO"
			case verb == "STARTTLS":
				t.last = "STARTTLS"
				t.startTLS = true
			}
		}
		t.write("C: ", line)
		return
	}
	// Replies are logged as "%d %s" with a multi-line text joined by "\n".
	if len(l.Messages) == 2 {
		if code, ok := l.Messages[0].(int); ok {
			lines := strings.Split(fmt.Sprint(l.Messages[1]), "\n")
			for i, s := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				t.write("S: ", fmt.Sprintf("%d%s%s", code, sep, s))
			}
			return
		}
	}
	t.write("S: ", fmt.Sprintf(l.Format, l.Messages...))
}

// Infof, Warnf and Errorf complete go-mail's log.Logger; its smtp client
// only logs at debug level.
func (t *tracer) Infof(l log.Log)  { t.Debugf(l) }
func (t *tracer) Warnf(l log.Log)  { t.Debugf(l) }
func (t *tracer) Errorf(l log.Log) { t.Debugf(l) }

// note writes a line of our own (message size, final reply), which go-mail
// does not log.
func (t *tracer) note(prefix, line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.write(prefix, line)
}

// reply writes a reply read by mailrun itself, one line per reply line,
// as Debugf does for the replies go-mail reads.
func (t *tracer) reply(code int, text string) {
	if t.w == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(text, "\n")
	for i, s := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		t.write("S: ", fmt.Sprintf("%d%s%s", code, sep, s))
	}
}

func (t *tracer) write(prefix, line string) {
	if t.w == nil {
		return
	}
	for _, s := range t.secrets {
		line = strings.ReplaceAll(line, s, "<redacted>")
	}
	t.w.writeLine(t.tag + prefix + line + "\n")
}

// phase is the last command sent while dialing, "" before EHLO.
func (t *tracer) phase() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

func (t *tracer) sawStartTLS() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.startTLS
}

func (t *tracer) dialDone() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inDial = false
}

// lmtpTrace adapts go-smtp's DebugWriter, which tees raw bytes of both
// directions into one stream, to "C: "/"S: " lines. A line that starts
// with a reply code is the server's; an AUTH command and every client line
// until the server's final AUTH reply are replaced, as are 334 challenges;
// the message body is summarised, not copied.
type lmtpTrace struct {
	t      *tracer
	buf    []byte
	inAuth bool
	inData bool
	body   int
}

func (l *lmtpTrace) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(l.buf[:i]), "\r")
		l.buf = l.buf[i+1:]
		l.line(line)
	}
	return len(p), nil
}

func isReplyLine(s string) bool {
	return len(s) >= 4 && s[0] >= '2' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' &&
		s[2] >= '0' && s[2] <= '9' && (s[3] == ' ' || s[3] == '-')
}

func (l *lmtpTrace) line(s string) {
	switch {
	case l.inData:
		if s == "." {
			l.inData = false
			l.t.note("C: ", fmt.Sprintf("[message body, %d lines]", l.body))
			l.t.note("C: ", ".")
			return
		}
		l.body++
	case isReplyLine(s):
		code := s[:3]
		switch {
		case l.inAuth && code == "334":
			l.t.note("S: ", code+" "+redactedAuth)
		default:
			if l.inAuth {
				l.inAuth = false
			}
			if code == "354" {
				l.inData = true
				l.body = 0
			}
			l.t.note("S: ", s)
		}
	case l.inAuth:
		l.t.note("C: ", redactedAuth)
	default:
		verb, _, _ := strings.Cut(s, " ")
		if strings.EqualFold(verb, "AUTH") {
			l.inAuth = true
			mech, _, _ := strings.Cut(strings.TrimSpace(s[len(verb):]), " ")
			l.t.note("C: ", "AUTH "+mech+" "+redactedAuth)
			return
		}
		l.t.note("C: ", s)
	}
}

// trackedConn counts write failures, so that after an error at the end of
// DATA we know whether the final "." left this machine (outcome unknown)
// or not (safe to retry).
type trackedConn struct {
	net.Conn
	writeErrs atomic.Int32
	// writes counts Write calls: the tests count round trips with it.
	writes atomic.Int64
}

func (c *trackedConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	n, err := c.Conn.Write(p)
	if err != nil {
		c.writeErrs.Add(1)
	}
	return n, err
}
