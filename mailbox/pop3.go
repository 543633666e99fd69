package mailbox

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Limits that keep a hostile or broken server from exhausting memory.
const (
	maxLine    = 64 << 10 // one response or message line
	maxMessage = 64 << 20 // one RETR
	maxList    = 1 << 20  // entries in a LIST or UIDL answer
)

// POP3 is a session with a POP3 maildrop (RFC 1939), secured with implicit
// TLS or STLS (RFC 2595). IDs are UIDL values when the server has them (they
// survive renumbering), message numbers otherwise.
type POP3 struct {
	conn   net.Conn
	r      *bufio.Reader
	cfg    Config
	where  string
	num    map[string]int // ID -> message number of this session
	closed bool
	// deleted counts DELE commands not yet committed by QUIT.
	deleted int
}

var _ Mailbox = (*POP3)(nil)

func openPOP3(ctx context.Context, cfg Config) (*POP3, error) {
	conn, tc, err := cfg.dial(ctx)
	if err != nil {
		return nil, err
	}
	p := &POP3{conn: conn, r: bufio.NewReader(conn), cfg: cfg, where: "pop3 " + cfg.addr()}
	if err := p.login(ctx, tc); err != nil {
		_ = p.conn.Close()
		return nil, err
	}
	return p, nil
}

func (p *POP3) login(ctx context.Context, tc *tls.Config) error {
	if _, err := p.status(ctx); err != nil {
		return fmt.Errorf("%s: greeting: %w", p.where, err)
	}
	if p.cfg.Security == "starttls" {
		// A -ERR ends the session: falling back to plaintext would send the
		// password in clear.
		if _, err := p.cmd(ctx, "STLS"); err != nil {
			return fmt.Errorf("%s: STLS: %w", p.where, err)
		}
		tconn := tls.Client(p.conn, tc)
		hctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
		err := tconn.HandshakeContext(hctx)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: tls handshake: %w", p.where, err)
		}
		// RFC 2595 section 4: discard anything read before the handshake.
		p.conn, p.r = tconn, bufio.NewReader(tconn)
	}
	if _, err := p.cmd(ctx, "USER "+p.cfg.Username); err != nil {
		return fmt.Errorf("%s: login as %q: %w", p.where, p.cfg.Username, err)
	}
	// The PASS line is never part of an error; only the server's reply is.
	if _, err := p.cmd(ctx, "PASS "+p.cfg.Password); err != nil {
		return fmt.Errorf("%s: login as %q: %w", p.where, p.cfg.Username, err)
	}
	return nil
}

// ServerError is a -ERR reply.
type ServerError struct {
	// Text is the reply after "-ERR ".
	Text string
}

// Error returns the reply as the server sent it.
func (e *ServerError) Error() string { return "-ERR " + e.Text }

// deadline applies ctx and the command timeout to the connection for one
// exchange; the returned function undoes the cancellation hook.
func (p *POP3) deadline(ctx context.Context) func() {
	if p.closed || ctx.Err() != nil {
		// Fail the exchange at once without writing anything.
		_ = p.conn.SetDeadline(time.Unix(1, 0))
		return func() {}
	}
	d := time.Now().Add(p.cfg.Timeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	_ = p.conn.SetDeadline(d)
	stop := context.AfterFunc(ctx, func() { _ = p.conn.SetDeadline(time.Unix(1, 0)) })
	return func() { stop() }
}

// cmd sends one command line and reads its status line.
func (p *POP3) cmd(ctx context.Context, line string) (string, error) {
	done := p.deadline(ctx)
	defer done()
	if _, err := io.WriteString(p.conn, line+"\r\n"); err != nil {
		return "", p.ctxErr(ctx, err)
	}
	text, err := p.readStatus()
	return text, p.ctxErr(ctx, err)
}

func (p *POP3) status(ctx context.Context) (string, error) {
	done := p.deadline(ctx)
	defer done()
	text, err := p.readStatus()
	return text, p.ctxErr(ctx, err)
}

// ctxErr prefers the context's reason over the I/O error it caused. Any
// error but a -ERR reply leaves the dialogue out of step, so the connection
// is dropped: without QUIT the server deletes nothing, which is the safe end.
func (p *POP3) ctxErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var serr *ServerError
	if !errors.As(err, &serr) && !p.closed {
		p.closed = true
		_ = p.conn.Close()
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

func (p *POP3) readStatus() (string, error) {
	line, err := p.readLine()
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(line), "\r\n")
	switch {
	case s == "+OK" || strings.HasPrefix(s, "+OK "):
		return strings.TrimPrefix(strings.TrimPrefix(s, "+OK"), " "), nil
	case s == "-ERR" || strings.HasPrefix(s, "-ERR "):
		return "", &ServerError{Text: strings.TrimPrefix(strings.TrimPrefix(s, "-ERR"), " ")}
	}
	return "", fmt.Errorf("malformed status line %q", truncate(s, 80))
}

// readLine returns one line including its terminator, refusing lines longer
// than maxLine.
func (p *POP3) readLine() ([]byte, error) {
	var buf []byte
	for {
		chunk, err := p.r.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > maxLine {
			return nil, fmt.Errorf("line longer than %d bytes", maxLine)
		}
		if err == nil {
			return buf, nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
}

// multi sends a command whose +OK reply is followed by a dot-terminated
// block, and returns that block with the byte-stuffing undone (RFC 1939
// section 3): a line starting with "." loses that first dot, and a line of
// just "." ends the block. Line endings are kept as the server sent them.
func (p *POP3) multi(ctx context.Context, line string, limit int) ([]byte, error) {
	done := p.deadline(ctx)
	defer done()
	if _, err := io.WriteString(p.conn, line+"\r\n"); err != nil {
		return nil, p.ctxErr(ctx, err)
	}
	if _, err := p.readStatus(); err != nil {
		return nil, p.ctxErr(ctx, err)
	}
	var out bytes.Buffer
	for {
		l, err := p.readLine()
		if err != nil {
			return nil, p.ctxErr(ctx, err)
		}
		if bytes.Equal(l, []byte(".\r\n")) || bytes.Equal(l, []byte(".\n")) {
			return out.Bytes(), nil
		}
		if l[0] == '.' {
			l = l[1:]
		}
		if out.Len()+len(l) > limit {
			// The rest of the block is still on the wire, so this session
			// cannot be trusted any more.
			_ = p.conn.Close()
			p.closed = true
			return nil, fmt.Errorf("answer larger than %d bytes", limit)
		}
		out.Write(l)
	}
}

// List pairs LIST (sizes) with UIDL (stable IDs) per message number.
func (p *POP3) List(ctx context.Context) ([]Item, error) {
	if p.closed {
		return nil, fmt.Errorf("%s: list: session closed", p.where)
	}
	sizes, err := p.multi(ctx, "LIST", maxList*32)
	if err != nil {
		return nil, fmt.Errorf("%s: LIST: %w", p.where, err)
	}
	uidl, uerr := p.multi(ctx, "UIDL", maxList*80)
	var serr *ServerError
	if uerr != nil && !errors.As(uerr, &serr) {
		return nil, fmt.Errorf("%s: UIDL: %w", p.where, uerr)
	}
	// UIDL is optional (RFC 1939 section 7); without it message numbers
	// serve as IDs, valid for this session only.
	ids := map[int]string{}
	if uerr == nil {
		if ids, err = parsePairs(uidl); err != nil {
			return nil, fmt.Errorf("%s: UIDL: %w", p.where, err)
		}
	}
	sz, err := parsePairs(sizes)
	if err != nil {
		return nil, fmt.Errorf("%s: LIST: %w", p.where, err)
	}
	items := make([]Item, 0, len(sz))
	p.num = make(map[string]int, len(sz))
	for n := 1; len(items) < len(sz) && n <= maxList; n++ {
		s, ok := sz[n]
		if !ok {
			// Deleted messages leave gaps in the numbering.
			continue
		}
		size, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("%s: LIST: bad size %q", p.where, s)
		}
		id := ids[n]
		if id == "" {
			id = strconv.Itoa(n)
		}
		p.num[id] = n
		items = append(items, Item{ID: id, Size: size})
	}
	return items, nil
}

// parsePairs reads "number value" lines.
func parsePairs(block []byte) (map[int]string, error) {
	out := map[int]string{}
	for _, line := range strings.Split(string(block), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("malformed line %q", truncate(line, 80))
		}
		n, err := strconv.Atoi(f[0])
		if err != nil || n < 1 {
			return nil, fmt.Errorf("malformed line %q", truncate(line, 80))
		}
		out[n] = f[1]
	}
	return out, nil
}

// number maps an ID from List to this session's message number.
func (p *POP3) number(id string) (int, error) {
	if p.closed {
		return 0, errors.New("session closed")
	}
	n, ok := p.num[id]
	if !ok {
		return 0, fmt.Errorf("unknown message id %q (call List first)", id)
	}
	return n, nil
}

// Fetch retrieves one message with RETR.
func (p *POP3) Fetch(ctx context.Context, id string) ([]byte, error) {
	n, err := p.number(id)
	if err != nil {
		return nil, fmt.Errorf("%s: retr: %w", p.where, err)
	}
	raw, err := p.multi(ctx, "RETR "+strconv.Itoa(n), maxMessage)
	if err != nil {
		return nil, fmt.Errorf("%s: RETR %d (%s): %w", p.where, n, id, err)
	}
	return raw, nil
}

// Delete marks one message with DELE; the server removes it only when Close
// sends QUIT (RFC 1939 section 6), so a dropped session deletes nothing.
func (p *POP3) Delete(ctx context.Context, id string) error {
	n, err := p.number(id)
	if err != nil {
		return fmt.Errorf("%s: dele: %w", p.where, err)
	}
	if _, err := p.cmd(ctx, "DELE "+strconv.Itoa(n)); err != nil {
		return fmt.Errorf("%s: DELE %d (%s): %w", p.where, n, id, err)
	}
	p.deleted++
	return nil
}

// Move always fails: POP3 has a single maildrop.
func (p *POP3) Move(context.Context, string, string) error {
	return fmt.Errorf("%s: move: %w", p.where, ErrNotSupported)
}

// Close sends QUIT, which commits the deletions (the UPDATE state of RFC 1939
// section 6), and closes the connection.
func (p *POP3) Close() error {
	if p.closed {
		if p.deleted > 0 {
			return fmt.Errorf("%s: session dropped after an error: %d deletions not committed", p.where, p.deleted)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Timeout)
	defer cancel()
	_, err := p.cmd(ctx, "QUIT")
	if p.closed {
		// QUIT itself broke the connection; the server may have committed or not.
		return fmt.Errorf("%s: QUIT: %w", p.where, err)
	}
	p.closed = true
	cerr := p.conn.Close()
	if err != nil {
		return fmt.Errorf("%s: QUIT: %w", p.where, err)
	}
	if cerr != nil {
		return fmt.Errorf("%s: close: %w", p.where, cerr)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
