package sender

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailrun/mailrun/internal/smtptest"
)

// rawGroup is what a rawServer answers to one chunked group: the exact
// bytes of every reply, written once the whole "BDAT <n> LAST" chunk has
// been read, then the connection is closed when close is set. hold writes
// nothing and waits for the client to go away.
type rawGroup struct {
	replies string
	close   bool
	hold    bool
}

// rawServer is a scripted SMTP server on 127.0.0.1:0 for replies that
// go-smtp cannot be made to give (a refused MAIL FROM followed by accepted
// commands, a 251 to BDAT, a reply out of step). It offers PIPELINING and
// CHUNKING, answers EHLO, QUIT, and RSET and NOOP sent alone, itself, and
// answers the k-th group of its one connection with groups[k]. got
// receives each group's commands and chunk size once read; seen lists
// every command's verb.
type rawServer struct {
	port int
	got  chan string
	done chan struct{} // closed when the connection has ended

	mu    sync.Mutex
	verbs []string // every command's verb, in order
}

// seen returns the verbs of the commands received so far, joined by
// spaces.
func (s *rawServer) seen() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.verbs, " ")
}

func startRaw(t *testing.T, groups ...rawGroup) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{port: ln.Addr().(*net.TCPAddr).Port, got: make(chan string, len(groups)+1), done: make(chan struct{})}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(s.done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		s.serve(c, groups)
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

func (s *rawServer) serve(c net.Conn, groups []rawGroup) {
	r := bufio.NewReader(c)
	if _, err := io.WriteString(c, "220 raw.test ESMTP\r\n"); err != nil {
		return
	}
	var group []string
	for k := 0; k < 100; k++ { // bounded: a test sends a few commands
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		s.mu.Lock()
		s.verbs = append(s.verbs, strings.ToUpper(verb))
		s.mu.Unlock()
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			_, _ = io.WriteString(c, "250-raw.test\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 8BITMIME\r\n")
		case "QUIT":
			_, _ = io.WriteString(c, "221 bye\r\n")
			return
		case "RSET", "NOOP": // sent alone, never in a group
			if len(group) > 0 {
				return
			}
			_, _ = io.WriteString(c, "250 ok\r\n")
		case "BDAT":
			size, _, _ := strings.Cut(arg, " ")
			n, err := strconv.Atoi(size)
			if err != nil {
				return
			}
			if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
				return
			}
			group = append(group, line)
			s.got <- strings.Join(group, "|")
			group = nil
			if len(groups) == 0 {
				return
			}
			g := groups[0]
			groups = groups[1:]
			if g.hold {
				_, _ = io.Copy(io.Discard, r)
				return
			}
			if _, err := io.WriteString(c, g.replies); err != nil || g.close {
				return
			}
		default:
			group = append(group, line) // RSET, MAIL, RCPT: answered with the group
		}
	}
}

func rawConn(t *testing.T, s *rawServer) *Conn {
	t.Helper()
	cfg := Config{Host: "127.0.0.1", Port: s.port, HELO: "client.test", Auth: "none",
		Security: "none", Timeout: 10 * time.Second, DataTimeout: 10 * time.Second}
	cn := mustDial(t, mustClient(t, cfg))
	if !cn.chunking {
		t.Fatal("chunking is off against a server offering CHUNKING and PIPELINING")
	}
	return cn
}

// TestChunkedReplySequences drives sendChunked through exact reply
// sequences. The rule under test: a recipient is Deferred or Rejected only
// when the server cannot have accepted the message for it, Delivered only
// on a 2xx to BDAT, and Unknown otherwise.
func TestChunkedReplySequences(t *testing.T) {
	to := []string{"a@example.org", "b@example.org"}
	for _, tt := range []struct {
		name    string
		replies string
		close   bool
		want    string
		wantErr string // substring of the error; "" for none
		fatal   bool
		broken  bool
	}{
		{
			name:    "all delivered",
			replies: "250 ok\r\n250 ok\r\n250 ok\r\n250 2.0.0 queued\r\n",
			want:    "a=delivered b=delivered",
		},
		{
			name:    "multi-line replies",
			replies: "250 ok\r\n550-5.1.1 no such\r\n550 5.1.1 user\r\n250 ok\r\n250-2.0.0 queued\r\n250 2.0.0 as X\r\n",
			want:    "a=rejected(550) b=delivered",
		},
		{
			// Any 2xx to BDAT is an acceptance (RFC 5321 section 4.2.1).
			name:    "251 to BDAT is delivered",
			replies: "250 ok\r\n250 ok\r\n250 ok\r\n251 2.0.0 queued elsewhere\r\n",
			want:    "a=delivered b=delivered",
		},
		{
			name:    "252 to RCPT is accepted",
			replies: "250 ok\r\n252 2.1.5 cannot verify, will try\r\n250 ok\r\n250 2.0.0 queued\r\n",
			want:    "a=delivered b=delivered",
		},
		{
			// A reply that cannot answer BDAT: the server is out of step
			// with the client and may have taken the message.
			name:    "354 to BDAT is unknown",
			replies: "250 ok\r\n250 ok\r\n250 ok\r\n354 go ahead\r\n",
			want:    "a=unknown b=unknown",
			wantErr: "BDAT:",
			broken:  true,
		},
		{
			name:    "354 to RCPT is unknown",
			replies: "250 ok\r\n354 go ahead\r\n250 ok\r\n250 2.0.0 queued\r\n",
			want:    "a=unknown b=unknown",
			wantErr: "RCPT TO:",
			broken:  true,
		},
		{
			name:    "452 then a later RCPT accepted",
			replies: "250 ok\r\n452 4.5.3 too many\r\n250 ok\r\n250 2.0.0 queued\r\n",
			want:    "a=deferred(452) b=delivered",
		},
		{
			name:    "RCPT 421 then BDAT 250",
			replies: "250 ok\r\n421 4.3.2 closing\r\n250 ok\r\n250 2.0.0 queued\r\n",
			want:    "a=deferred(421) b=delivered",
			broken:  true,
		},
		{
			name:    "closed after the BDAT reply",
			replies: "250 ok\r\n250 ok\r\n250 ok\r\n250 2.0.0 queued\r\n",
			close:   true,
			want:    "a=delivered b=delivered",
		},
		{
			name:    "closed before the BDAT reply",
			replies: "250 ok\r\n250 ok\r\n250 ok\r\n",
			close:   true,
			want:    "a=unknown b=unknown",
			wantErr: "BDAT: no reply after the message was sent",
			broken:  true,
		},
		{
			// Issue 9: a server that closes before it answers MAIL FROM
			// never reached BDAT, though the chunk left with the group.
			name:    "closed before any reply",
			replies: "",
			close:   true,
			want:    "a=deferred b=deferred",
			wantErr: "MAIL FROM: EOF",
			broken:  true,
		},
		{
			name:    "closed before a RCPT reply",
			replies: "250 ok\r\n250 ok\r\n",
			close:   true,
			want:    "a=deferred b=deferred",
			wantErr: "RCPT TO: EOF",
			broken:  true,
		},
		{
			// A relay at its error limit answers the next command 421 and
			// closes: the message was not taken.
			name:    "421 to RCPT then closed before the BDAT reply",
			replies: "250 ok\r\n250 ok\r\n421 4.7.0 Error: too many errors\r\n",
			close:   true,
			want:    "a=deferred b=deferred(421)",
			wantErr: "BDAT: EOF",
			broken:  true,
		},
		{
			name:    "MAIL refused, everything refused",
			replies: "451 4.3.0 try later\r\n503 5.5.1 no MAIL\r\n503 5.5.1 no MAIL\r\n503 5.5.1 no RCPT\r\n",
			want:    "a=deferred(451) b=deferred(451)",
			wantErr: "MAIL FROM: 451",
		},
		{
			name:    "MAIL refused, 5xx",
			replies: "550 5.7.1 sender refused\r\n503 5.5.1 no MAIL\r\n503 5.5.1 no MAIL\r\n503 5.5.1 no RCPT\r\n",
			want:    "a=deferred(550) b=deferred(550)",
			wantErr: "MAIL FROM: 550",
			fatal:   true,
		},
		{
			name:    "MAIL refused, closed before the rest",
			replies: "421 4.3.2 closing\r\n",
			close:   true,
			want:    "a=deferred(421) b=deferred(421)",
			wantErr: "MAIL FROM: 421",
			broken:  true,
		},
		{
			// A server still in an older transaction (its MAIL FROM is
			// "nested") may take the recipients and the message.
			name:    "MAIL refused, RCPT and BDAT accepted",
			replies: "503 5.5.1 nested MAIL\r\n250 ok\r\n250 ok\r\n250 2.0.0 queued\r\n",
			want:    "a=unknown b=unknown",
			wantErr: "BDAT: no reply after the message was sent",
			broken:  true,
		},
		{
			name:    "MAIL refused, one RCPT accepted, BDAT accepted",
			replies: "451 4.3.0 later\r\n250 ok\r\n503 5.5.1 no\r\n250 2.0.0 queued\r\n",
			want:    "a=unknown b=unknown",
			wantErr: "BDAT: no reply after the message was sent",
			broken:  true,
		},
		{
			name:    "MAIL refused, one RCPT accepted, then closed",
			replies: "451 4.3.0 later\r\n250 ok\r\n",
			close:   true,
			want:    "a=unknown b=unknown",
			wantErr: "BDAT: no reply after the message was sent",
			broken:  true,
		},
		{
			// The server took a recipient but refused the chunk: nothing
			// was delivered, though the connection is out of step.
			name:    "MAIL refused, one RCPT accepted, BDAT refused",
			replies: "451 4.3.0 later\r\n250 ok\r\n503 5.5.1 no\r\n554 5.5.1 no valid recipients\r\n",
			want:    "a=deferred(451) b=deferred(451)",
			wantErr: "MAIL FROM: 451",
			broken:  true,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startRaw(t, rawGroup{replies: tt.replies, close: tt.close})
			cn := rawConn(t, s)
			res, err := cn.Send(context.Background(), "s@example.org", to, testMsg)
			if got := statuses(res); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
			if IsFatal(err) != tt.fatal {
				t.Errorf("IsFatal = %v, want %v", IsFatal(err), tt.fatal)
			}
			if cn.broken != tt.broken {
				t.Errorf("broken = %v, want %v", cn.broken, tt.broken)
			}
		})
	}
}

// TestChunkedRsetOnlyAfterRefusal checks that a reused connection goes
// on with MAIL FROM after a delivered message (no RSET in front of the
// group, whose 421 from a relay at its error limit once left the message
// Unknown), and that a transaction whose every recipient was refused is
// ended with a lone RSET before the next group.
func TestChunkedRsetOnlyAfterRefusal(t *testing.T) {
	s := startRaw(t,
		rawGroup{replies: "250 ok\r\n250 ok\r\n250 2.0.0 first\r\n"},
		rawGroup{replies: "250 ok\r\n550 5.1.1 no such user\r\n554 5.5.1 no valid recipients\r\n"},
		rawGroup{replies: "250 ok\r\n250 ok\r\n250 2.0.0 third\r\n"},
	)
	cn := rawConn(t, s)
	for i, want := range []string{"a=delivered", "a=rejected(550)", "a=delivered"} {
		res, err := cn.Send(context.Background(), "s@example.org", []string{"a@example.org"}, testMsg)
		if got := statuses(res); got != want || err != nil {
			t.Errorf("message %d: got %s, %v; want %s", i, got, err, want)
		}
		if g := <-s.got; strings.HasPrefix(g, "RSET") {
			t.Errorf("message %d: group %q leads with RSET", i, g)
		}
	}
	if got, want := s.seen(), "EHLO MAIL RCPT BDAT MAIL RCPT BDAT RSET MAIL RCPT BDAT"; got != want {
		t.Errorf("server saw %s, want %s", got, want)
	}
}

// TestChunkedSilenceIsUnknown: a server that holds the whole chunk and
// never answers may still take the message: when Timeout ends the wait
// for the reply to MAIL FROM, the recipients are Unknown, not Deferred.
func TestChunkedSilenceIsUnknown(t *testing.T) {
	s := startRaw(t, rawGroup{hold: true})
	cfg := Config{Host: "127.0.0.1", Port: s.port, HELO: "client.test", Auth: "none",
		Security: "none", Timeout: 300 * time.Millisecond, DataTimeout: 10 * time.Second}
	cn := mustDial(t, mustClient(t, cfg))
	res, err := cn.Send(context.Background(), "s@example.org", []string{"a@example.org"}, testMsg)
	if got := statuses(res); got != "a=unknown" || err == nil || !cn.broken {
		t.Errorf("got %s, %v, broken %v; want a=unknown, an error, closed", got, err, cn.broken)
	}
}

// TestChunkedReused421IsStale is issue 9's case once RSET is gone: a
// relay at its error limit answers the next group's MAIL FROM with 421
// and closes. Nothing was taken, and on a reused connection the error is
// stale, for a Pool to redial without counting an attempt.
func TestChunkedReused421IsStale(t *testing.T) {
	s := startRaw(t,
		rawGroup{replies: "250 ok\r\n250 ok\r\n250 2.0.0 first\r\n"},
		rawGroup{replies: "421 4.7.0 Error: too many errors\r\n", close: true},
	)
	cn := rawConn(t, s)
	if res, err := cn.Send(context.Background(), "s@example.org", []string{"a@example.org"}, testMsg); err != nil || statuses(res) != "a=delivered" {
		t.Fatalf("first message: %s, %v", statuses(res), err)
	}
	res, err := cn.Send(context.Background(), "s@example.org", []string{"b@example.org"}, testMsg)
	if got := statuses(res); got != "b=deferred(421)" || !isStale(err) || IsFatal(err) {
		t.Errorf("second message: %s, %v; want b=deferred(421) and a stale connection", got, err)
	}
}

// TestChunkedCancelAfterWrite cancels the context once the server holds
// the whole chunk: the AfterFunc of Send closes the socket under the read,
// and the recipients are Unknown, never Deferred.
func TestChunkedCancelAfterWrite(t *testing.T) {
	s := startRaw(t, rawGroup{hold: true})
	cn := rawConn(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.got:
		case <-time.After(10 * time.Second):
		}
		cancel()
	}()
	res, err := cn.Send(ctx, "s@example.org", []string{"a@example.org"}, testMsg)
	if got := statuses(res); got != "a=unknown" || err == nil {
		t.Errorf("got %s, %v; want a=unknown and an error", got, err)
	}
	if !cn.broken {
		t.Error("connection not closed after the cancel")
	}
}

// TestChunkedCommitFailureSendsNothing checks that a failing commit hook
// leaves nothing on the wire: the server never sees the group.
func TestChunkedCommitFailureSendsNothing(t *testing.T) {
	s := startRaw(t)
	cn := rawConn(t, s)
	calls := 0
	cn.commit = func() error { calls++; return fmt.Errorf("journal full") }
	res, err := cn.Send(context.Background(), "s@example.org", []string{"a@example.org"}, testMsg)
	if got := statuses(res); got != "a=deferred" || !IsFatal(err) || calls != 1 {
		t.Errorf("got %s, %v (fatal %v), %d commit calls; want a=deferred, fatal, 1", got, err, IsFatal(err), calls)
	}
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the server's connection is still open")
	}
	select {
	case g := <-s.got:
		t.Errorf("server got a group after a failed commit: %q", g)
	default:
	}
}

// TestChunkedUnsolicitedReplyIsStale checks that a server that says "421"
// right after its reply to a message, and closes, costs the next message
// a redial, not an Unknown outcome: the 421 arrived with the reply, so it
// is seen before the next group is written.
func TestChunkedUnsolicitedReplyIsStale(t *testing.T) {
	s := startRaw(t, rawGroup{replies: "250 ok\r\n250 ok\r\n250 2.0.0 queued\r\n421 4.7.0 too many messages\r\n", close: true})
	cn := rawConn(t, s)
	res, err := cn.Send(context.Background(), "s@example.org", []string{"a@example.org"}, testMsg)
	if got := statuses(res); got != "a=delivered" || err != nil {
		t.Fatalf("first message: %s, %v", got, err)
	}
	res, err = cn.Send(context.Background(), "s@example.org", []string{"a@example.org"}, testMsg)
	if got := statuses(res); got != "a=deferred" || !isStale(err) {
		t.Errorf("second message: %s, %v; want a=deferred and a stale connection", got, err)
	}
	if n := len(s.got); n != 1 {
		t.Errorf("server got %d groups, want 1", n)
	}
}

// TestChunkedTraceHasNoBody checks that the trace of a chunked message
// names its size but never copies its text.
func TestChunkedTraceHasNoBody(t *testing.T) {
	s := startRaw(t, rawGroup{replies: "250 ok\r\n250 ok\r\n250 2.0.0 queued\r\n"})
	trace := newSyncBuffer()
	cfg := Config{Host: "127.0.0.1", Port: s.port, HELO: "client.test", Auth: "none",
		Security: "none", Timeout: 10 * time.Second, DataTimeout: 10 * time.Second, Debug: trace}
	cn := mustDial(t, mustClient(t, cfg))
	if _, err := cn.Send(context.Background(), "s@example.org", []string{"a@example.org"}, testMsg); err != nil {
		t.Fatal(err)
	}
	tr := trace.String()
	for _, want := range []string{"C: BDAT 77 LAST", "C: [message, 77 bytes]", "S: 250 2.0.0 queued"} {
		if !strings.Contains(tr, want) {
			t.Errorf("trace lacks %q:\n%s", want, tr)
		}
	}
	for _, body := range []string{"Subject: hi", "Hello.", "leading dot"} {
		if strings.Contains(tr, body) {
			t.Errorf("trace holds message text %q:\n%s", body, tr)
		}
	}
}

// TestChunkedClosedConnectionIsStale checks that a server that closes the
// connection without a word after a message (an idle timeout, a restart)
// costs the next message a redial, not an Unknown outcome, even within
// idleProbe: the close is seen before the group is written.
func TestChunkedClosedConnectionIsStale(t *testing.T) {
	s := startRaw(t, rawGroup{replies: "250 ok\r\n250 ok\r\n250 2.0.0 queued\r\n", close: true})
	cn := rawConn(t, s)
	res, err := cn.Send(context.Background(), "s@example.org", []string{"a@example.org"}, testMsg)
	if got := statuses(res); got != "a=delivered" || err != nil {
		t.Fatalf("first message: %s, %v", got, err)
	}
	select {
	case <-s.done: // the server has closed its side
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not close the connection")
	}
	res, err = cn.Send(context.Background(), "s@example.org", []string{"b@example.org"}, testMsg)
	if got := statuses(res); got != "b=deferred" || !isStale(err) {
		t.Errorf("second message: %s, %v; want b=deferred and a stale connection", got, err)
	}
	if n := len(s.got); n != 1 {
		t.Errorf("server got %d groups, want 1", n)
	}
}

// TestChunkedOneWrite checks that a message of a few KiB leaves with its
// commands in one write (the bufio.Writer's 4 KiB once split it in two),
// and that a message past oneWrite still arrives whole.
func TestChunkedOneWrite(t *testing.T) {
	line := strings.Repeat("x", 70) + "\r\n"
	for _, tc := range []struct {
		size      int
		maxWrites int64
	}{{6 << 10, 1}, {oneWrite + 5000, 3 + (oneWrite+5000)/bodyChunk}} {
		srv := smtptest.Start(t, smtptest.Options{})
		cn := mustDial(t, mustClient(t, config(srv, smtptest.Options{})))
		msg := []byte("Subject: big\r\n\r\n" + strings.Repeat(line, tc.size/len(line)))
		before := cn.raw.writes.Load()
		res, err := cn.Send(context.Background(), "s@example.org", []string{"a@example.org", "b@example.org"}, msg)
		if err != nil || statuses(res) != "a=delivered b=delivered" {
			t.Fatalf("%d bytes: %s, %v", len(msg), statuses(res), err)
		}
		if got := cn.raw.writes.Load() - before; got > tc.maxWrites {
			t.Errorf("%d bytes: %d writes, want at most %d", len(msg), got, tc.maxWrites)
		}
		if msgs := srv.Messages(); len(msgs) != 1 || !bytes.Equal(msgs[0].Data, msg) {
			t.Errorf("%d bytes: the server did not get the message intact", len(msg))
		}
	}
}

// TestChunkedPeekAfterIdleDeadline checks that a live connection whose
// last read deadline passed while it sat idle (a slow rate, a short
// timeout) is reused, not taken for a closed one by the peek.
func TestChunkedPeekAfterIdleDeadline(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	cn := mustDial(t, mustClient(t, config(srv, smtptest.Options{})))
	for i, a := range []string{"a@example.org", "b@example.org"} {
		if i > 0 {
			_ = cn.raw.SetDeadline(time.Now().Add(-time.Second)) // as if idle past it
		}
		res, err := cn.Send(context.Background(), "s@example.org", []string{a}, testMsg)
		if err != nil || res.Rcpts[0].Status != Delivered {
			t.Fatalf("%s: %s, %v", a, statuses(res), err)
		}
	}
	if got := srv.Sessions(); got != 1 {
		t.Errorf("got %d sessions, want the one connection reused", got)
	}
}
