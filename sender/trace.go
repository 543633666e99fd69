package sender

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
)

// redactedAuth stands in a trace for every AUTH payload: the initial
// response, each client line of the exchange and each 334 challenge.
const redactedAuth = "<SMTP auth data redacted>"

// tracer writes the whole conversation of one connection, SMTP or LMTP,
// from the greeting to QUIT, as "C: " and "S: " lines to the Client's
// debug writer. It is the one trace of the package: the dial and the
// transactions call it as they write and read. AUTH payloads never reach
// it (the AUTH step hands it redactedAuth instead), and it also scrubs
// every known form of the password from each line, so that a mistake
// elsewhere cannot leak it. A nil *tracer, a Client without Debug, does
// nothing and costs nothing.
type tracer struct {
	w *traceWriter
	// tag is "[n] ", the connection's number within its Client, so that
	// the interleaved lines of concurrent connections stay readable.
	tag     string
	secrets []string
}

func newTracer(w *traceWriter, secrets []string) *tracer {
	if w == nil {
		return nil
	}
	return &tracer{w: w, secrets: secrets, tag: fmt.Sprintf("[%d] ", w.seq.Add(1))}
}

// traceWriter is the one Config.Debug writer of a Client, shared by all of
// its connections; each connection is used by one goroutine at a time,
// but the writer is common to all of them, so it has the lock: a
// bytes.Buffer or an *os.File shared by several connections would
// otherwise see concurrent writes. seq numbers the connections.
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

// client traces a line the client sent, or a note of its own in brackets
// ("[message, 77 bytes]") where the bytes are not worth a line.
func (t *tracer) client(line string) {
	if t == nil {
		return
	}
	t.write("C: ", line)
}

// server traces a reply, one line per line of a multi-line reply as
// textproto joins them with "\n".
func (t *tracer) server(code int, text string) {
	if t == nil {
		return
	}
	for {
		line, rest, more := strings.Cut(text, "\n")
		sep := " "
		if more {
			sep = "-"
		}
		t.write("S: ", fmt.Sprintf("%d%s%s", code, sep, line))
		if !more {
			return
		}
		text = rest
	}
}

func (t *tracer) write(prefix, line string) {
	for _, s := range t.secrets {
		line = strings.ReplaceAll(line, s, "<redacted>")
	}
	t.w.writeLine(t.tag + prefix + line + "\n")
}

// trackedConn is the socket under a connection, TLS or not. It counts
// writes: the tests count round trips with it.
type trackedConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *trackedConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}
