package sender

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/mailrun/mailrun/internal/smtptest"
)

func TestSendReplyClasses(t *testing.T) {
	to := []string{"ok@example.org", "perm@example.org", "temp@example.org", "ok2@example.org"}
	tests := []struct {
		name    string
		setup   func(s *smtptest.Server)
		want    string
		wantErr string // Error() of the returned error, "" for none
		fatal   bool
		broken  bool
		stored  int // messages the server accepted; -1: either
		opt     smtptest.Options
		// chunked, when set, is what differs with CHUNKING: the message
		// leaves with its envelope, before any reply is read.
		chunked *chunkedWant
	}{
		{
			name:   "all delivered",
			setup:  func(s *smtptest.Server) {},
			want:   "ok=delivered perm=delivered temp=delivered ok2=delivered",
			stored: 1,
		},
		{
			name: "rcpt 5xx and 4xx do not sink the others",
			setup: func(s *smtptest.Server) {
				s.RejectRcpt("perm@example.org", 550, "5.1.1", "no such user")
				s.RejectRcpt("temp@example.org", 450, "4.2.1", "mailbox busy")
			},
			want:   "ok=delivered perm=rejected(550) temp=deferred(450) ok2=delivered",
			stored: 1,
		},
		{
			name:  "no rcpt accepted skips DATA",
			setup: func(s *smtptest.Server) { s.FailCommand("RCPT", len(to), 550, "5.1.1", "no such user") },
			want:  "ok=rejected(550) perm=rejected(550) temp=rejected(550) ok2=rejected(550)",
		},
		{
			name:   "452 defers the rest to the next transaction",
			setup:  func(s *smtptest.Server) {},
			opt:    smtptest.Options{MaxRecipients: 2},
			want:   "ok=delivered perm=delivered temp=deferred(452) ok2=deferred(452)",
			stored: 1,
		},
		{
			name: "data refused after a pipelined group",
			setup: func(s *smtptest.Server) {
				s.RejectRcpt("ok@example.org", 550, "5.1.1", "no such user")
				s.RejectRcpt("perm@example.org", 550, "5.1.1", "no such user")
				s.RejectRcpt("temp@example.org", 450, "4.2.1", "mailbox busy")
				s.RejectRcpt("ok2@example.org", 550, "5.1.1", "no such user")
			},
			want: "ok=rejected(550) perm=rejected(550) temp=deferred(450) ok2=rejected(550)",
		},
		{
			name:  "final reply 4xx defers all accepted",
			setup: func(s *smtptest.Server) { s.FailCommand("DATA", 1, 451, "4.7.1", "try later") },
			want:  "ok=deferred(451) perm=deferred(451) temp=deferred(451) ok2=deferred(451)",
		},
		{
			name:  "final reply 5xx rejects all accepted",
			setup: func(s *smtptest.Server) { s.FailCommand("DATA", 1, 554, "5.7.1", "spam") },
			want:  "ok=rejected(554) perm=rejected(554) temp=rejected(554) ok2=rejected(554)",
		},
		{
			name:    "mail from 5xx is fatal",
			setup:   func(s *smtptest.Server) { s.FailCommand("MAIL", 1, 553, "5.7.1", "sender not allowed") },
			want:    "ok=deferred(553) perm=deferred(553) temp=deferred(553) ok2=deferred(553)",
			wantErr: "MAIL FROM: 553 5.7.1 sender not allowed",
			fatal:   true,
		},
		{
			name:    "mail from 4xx is temporary",
			setup:   func(s *smtptest.Server) { s.FailCommand("MAIL", 1, 451, "4.3.0", "busy") },
			want:    "ok=deferred(451) perm=deferred(451) temp=deferred(451) ok2=deferred(451)",
			wantErr: "MAIL FROM: 451 4.3.0 busy",
		},
		{
			name:    "421 on rcpt closes the connection",
			setup:   func(s *smtptest.Server) { s.RejectRcpt("perm@example.org", 421, "4.3.2", "shutting down") },
			want:    "ok=deferred(421) perm=deferred(421) temp=deferred(421) ok2=deferred(421)",
			wantErr: "RCPT TO: 421 4.3.2 shutting down",
			broken:  true,
			// go-smtp goes on after a 421 from its backend, and the reply
			// to BDAT says the others got the message.
			chunked: &chunkedWant{want: "ok=delivered perm=deferred(421) temp=delivered ok2=delivered", broken: true, stored: 1},
		},
		{
			name:    "dropped before the final dot is temporary",
			setup:   func(s *smtptest.Server) { s.DropAt("RCPT", 1) },
			want:    "ok=deferred perm=deferred temp=deferred ok2=deferred",
			wantErr: "RCPT TO:",
			broken:  true,
			// With CHUNKING the message had left too, but a server that
			// closed before it answered the RCPT TO never reached BDAT
			// (issue 9): Deferred, as with DATA.
		},
		{
			name:    "dropped after the final dot is unknown",
			setup:   func(s *smtptest.Server) { s.DropAfterData(1) },
			want:    "ok=unknown perm=unknown temp=unknown ok2=unknown",
			wantErr: `DATA: no reply after the final "."`,
			broken:  true,
			stored:  1,
			chunked: &chunkedWant{want: "ok=unknown perm=unknown temp=unknown ok2=unknown", wantErr: "BDAT: no reply after the message was sent", broken: true, stored: 1},
		},
	}
	for _, mode := range []string{"chunking", "pipelining", "plain"} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/%s", tt.name, mode), func(t *testing.T) {
				srv := smtptest.Start(t, tt.opt)
				tt.setup(srv)
				cfg := config(srv, tt.opt)
				switch mode {
				case "pipelining":
					cfg.NoChunking = true
				case "plain":
					cfg.Port = noPipelining(t, srv)
				}
				if c := tt.chunked; c != nil && mode == "chunking" {
					tt.want, tt.wantErr, tt.broken, tt.stored = c.want, c.wantErr, c.broken, c.stored
				}
				cn := mustDial(t, mustClient(t, cfg))
				if cn.pipelining != (mode != "plain") || cn.chunking != (mode == "chunking") {
					t.Fatalf("pipelining = %v, chunking = %v in mode %s", cn.pipelining, cn.chunking, mode)
				}
				res, err := cn.Send(context.Background(), "sender@example.org", to, testMsg)
				if got := statuses(res); got != tt.want {
					t.Errorf("got %s, want %s", got, tt.want)
				}
				switch {
				case tt.wantErr == "" && err != nil:
					t.Errorf("got error %v, want none", err)
				case tt.wantErr != "":
					if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
						t.Errorf("got error %v, want %q", err, tt.wantErr)
					}
					if IsFatal(err) != tt.fatal {
						t.Errorf("IsFatal = %v, want %v", IsFatal(err), tt.fatal)
					}
					// Unknown is never retried, so it is not temporary either.
					wantTemp := !tt.fatal && !strings.Contains(tt.want, "unknown")
					if e := asError(t, err); e.Temporary != wantTemp {
						t.Errorf("Temporary = %v, want %v", e.Temporary, wantTemp)
					}
				}
				if cn.broken != tt.broken {
					t.Errorf("broken = %v, want %v", cn.broken, tt.broken)
				}
				if n := len(srv.Messages()); n != tt.stored && tt.stored >= 0 {
					t.Errorf("server stored %d messages, want %d", n, tt.stored)
				}
				for _, rr := range res.Rcpts {
					if (rr.Status == Delivered) != (rr.Err == nil) {
						t.Errorf("%s: status %s with Err %v", rr.Addr, rr.Status, rr.Err)
					}
				}
				if cn.broken {
					return
				}
				// A connection left open is in step with the server: the
				// next transaction on it goes through.
				if err := cn.Reset(); err != nil {
					t.Fatalf("Reset: %v", err)
				}
				res, err = cn.Send(context.Background(), "sender@example.org", []string{"next@example.org"}, testMsg)
				if err != nil || res.Rcpts[0].Status != Delivered {
					t.Errorf("next transaction: got %s, %v, want delivered", statuses(res), err)
				}
			})
		}
	}
}

func TestSendReplyDetails(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	srv.RejectRcpt("ann@example.org", 550, "5.1.1", "no such user")
	cn := mustDial(t, mustClient(t, config(srv, smtptest.Options{})))
	res, err := cn.Send(context.Background(), "s@example.org", []string{"ann@example.org", "bob@example.org"}, testMsg)
	if err != nil {
		t.Fatal(err)
	}
	e := asError(t, res.Rcpts[0].Err)
	if got, want := e.Error(), "RCPT TO: 550 5.1.1 no such user"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if want := (Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"}); res.Rcpts[0].Reply != want {
		t.Errorf("got reply %+v, want %+v", res.Rcpts[0].Reply, want)
	}
	if e.Temporary || IsFatal(e) {
		t.Errorf("a rejected RCPT must be neither temporary nor fatal: %+v", e)
	}
	if r := res.Rcpts[1].Reply; r.Code != 250 || r.Enhanced != "2.0.0" {
		t.Errorf("got delivered reply %+v, want 250 2.0.0", r)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || msgs[0].From != "s@example.org" || strings.Join(msgs[0].To, ",") != "bob@example.org" {
		t.Fatalf("got %+v", msgs)
	}
	// The server stores the message as sent, dot-unstuffed, with CRLF.
	if !bytes.Equal(msgs[0].Data, testMsg) {
		t.Errorf("got data %q, want %q", msgs[0].Data, testMsg)
	}
}

func TestConnReuseWithReset(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	cn := mustDial(t, mustClient(t, config(srv, smtptest.Options{})))
	for i := range 3 {
		if i > 0 {
			if err := cn.Reset(); err != nil {
				t.Fatalf("Reset: %v", err)
			}
		}
		if _, err := cn.Send(context.Background(), "s@example.org", []string{"a@example.org"}, testMsg); err != nil {
			t.Fatal(err)
		}
	}
	if err := cn.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := srv.Sessions(); got != 1 {
		t.Errorf("got %d sessions, want 1", got)
	}
	if got := len(srv.Messages()); got != 3 {
		t.Errorf("got %d messages, want 3", got)
	}
}

func TestSendRefusesInjection(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	cn := mustDial(t, mustClient(t, config(srv, smtptest.Options{})))
	res, err := cn.Send(context.Background(), "s@example.org", []string{"a@example.org\r\nRCPT TO:<evil@example.org>", "b@example.org"}, testMsg)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := statuses(res), "a=rejected b=delivered"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if srv.Deliveries("evil@example.org") != 0 {
		t.Error("injected recipient got the message")
	}
	_, err = cn.Send(context.Background(), "s@example.org>\r\nRSET", []string{"b@example.org"}, testMsg)
	if !IsFatal(err) {
		t.Errorf("got %v, want a fatal error for a bad sender", err)
	}
}

// chunkedWant is the outcome of a TestSendReplyClasses case over CHUNKING.
type chunkedWant struct {
	want, wantErr string
	broken        bool
	stored        int
}

// noPipelining starts a TCP proxy on 127.0.0.1:0 in front of srv that drops
// PIPELINING from the server's EHLO reply (go-smtp's server always offers
// it), so the one-command-at-a-time path meets the same server rules. It
// returns the proxy's port; plaintext only.
func noPipelining(t *testing.T, srv *smtptest.Server) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", srv.Addr())
			if err != nil {
				_ = c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			wg.Go(func() {
				_, _ = io.Copy(s, c)
				_ = s.Close()
				_ = c.Close()
			})
			wg.Go(func() {
				r := bufio.NewReader(s)
				for {
					line, err := r.ReadBytes('\n')
					if len(line) > 0 && string(line) != "250-PIPELINING\r\n" {
						if _, werr := c.Write(line); werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				_ = c.Close()
				_ = s.Close()
			})
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// TestSendPipelines proves the group goes out at once: a message costs two
// writes (the MAIL/RCPT/DATA group, then the body) when the server offers
// PIPELINING, one per command otherwise, and the trace shows every command
// of the group before the first reply.
func TestSendPipelines(t *testing.T) {
	to := []string{"a@example.org", "b@example.org", "c@example.org"}
	for _, tt := range []struct {
		mode       string
		pipelining bool
		writes     int64 // per message: MAIL, 3 RCPT, DATA, body
		last, want []string
	}{
		{"chunking", true, 1, []string{"C: BDAT 77 LAST", "C: [message, 77 bytes]"}, []string{"S: 250 2.0.0 OK: queued"}},
		{"pipelining", true, 2, []string{"C: DATA"}, []string{"S: 354 ", "C: [message, ", "C: .", "S: 250 2.0.0 OK: queued"}},
		{"plain", false, 6, []string{"C: DATA"}, []string{"S: 354 ", "C: [message, ", "C: .", "S: 250 2.0.0 OK: queued"}},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.Options{})
			cfg := config(srv, smtptest.Options{})
			switch tt.mode {
			case "pipelining":
				cfg.NoChunking = true
			case "plain":
				cfg.Port = noPipelining(t, srv)
			}
			trace := newSyncBuffer()
			cfg.Debug = trace
			cn := mustDial(t, mustClient(t, cfg))
			before := cn.raw.writes.Load()
			res, err := cn.Send(context.Background(), "s@example.org", to, testMsg)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := statuses(res), "a=delivered b=delivered c=delivered"; got != want {
				t.Errorf("got %s, want %s", got, want)
			}
			if got := cn.raw.writes.Load() - before; got != tt.writes {
				t.Errorf("got %d writes for one message, want %d", got, tt.writes)
			}
			tr := trace.String()
			i := strings.Index(tr, "C: MAIL FROM:<s@example.org>")
			if i < 0 {
				t.Fatalf("trace lacks MAIL FROM:\n%s", tr)
			}
			group := tr[i:]
			if j := strings.Index(group, "S: "); j >= 0 {
				group = group[:j]
			}
			hasGroup := strings.Count(group, "C: RCPT TO:") == 3
			for _, l := range tt.last {
				hasGroup = hasGroup && strings.Contains(group, l)
			}
			if hasGroup != tt.pipelining {
				t.Errorf("commands before the first reply:\n%s\nwant the whole group: %v", group, tt.pipelining)
			}
			if strings.Contains(tr, "S: 354 ") == (tt.mode == "chunking") {
				t.Errorf("DATA used %v, want %v:\n%s", !(tt.mode == "chunking"), tt.mode != "chunking", tr)
			}
			for _, want := range append([]string{"S: 250 2.0.0 Roger"}, tt.want...) {
				if !strings.Contains(tr, want) {
					t.Errorf("trace lacks %q:\n%s", want, tr)
				}
			}
		})
	}
}

func TestMailParams(t *testing.T) {
	tests := []struct {
		eightBit, utf8, size bool
		from                 string
		to                   []string
		want                 string
	}{
		{false, false, false, "a@example.org", []string{"b@example.org"}, ""},
		{true, false, false, "a@example.org", []string{"b@example.org"}, " BODY=8BITMIME"},
		{true, true, false, "a@example.org", []string{"b@example.org"}, " BODY=8BITMIME"},
		{true, true, false, "a@example.org", []string{"b@example.org", "zoë@example.org"}, " BODY=8BITMIME SMTPUTF8"},
		{false, true, false, "jürgen@example.org", nil, " SMTPUTF8"},
		{false, false, false, "jürgen@example.org", nil, ""},
		{false, false, true, "a@example.org", nil, " SIZE=1234"},
		{true, true, true, "jürgen@example.org", nil, " SIZE=1234 BODY=8BITMIME SMTPUTF8"},
	}
	for _, tt := range tests {
		cn := &Conn{eightBit: tt.eightBit, utf8: tt.utf8, sizeOffered: tt.size}
		if got := string(cn.appendMailParams(nil, tt.from, tt.to, 1234)); got != tt.want {
			t.Errorf("8bit=%v utf8=%v size=%v %s %v: got %q, want %q", tt.eightBit, tt.utf8, tt.size, tt.from, tt.to, got, tt.want)
		}
	}
}

// TestWireSize checks SIZE= against what the server counts (RFC 1870
// section 5): CRLF line ends, no stuffed dots, no final ".".
func TestWireSize(t *testing.T) {
	for _, tt := range []struct {
		msg     string
		chunked bool
		want    int64
	}{
		{"a\r\n.b\r\n", false, 7},
		{"a\n.b\n", false, 7},
		{"a\r\nb", false, 6},
		{"a\nb", true, 3},
		{"", false, 0},
	} {
		if got := wireSize([]byte(tt.msg), tt.chunked); got != tt.want {
			t.Errorf("%q chunked %v: got %d, want %d", tt.msg, tt.chunked, got, tt.want)
		}
	}
}
