package sender

import (
	"context"
	"strings"
	"testing"

	"github.com/mailrun/mailrun/internal/smtptest"
)

// TestLMTP runs LMTP through the one transaction path in each of its
// modes: the end of the message (BDAT LAST with CHUNKING, the final "."
// otherwise) gets one reply per accepted recipient (RFC 2033 section
// 4.2), each settling its own recipient.
func TestLMTP(t *testing.T) {
	for _, tt := range []struct{ mode, endCmd, endLine string }{
		{"chunking", "BDAT", "C: BDAT 77 LAST"},
		{"pipelining", "DATA", "C: ."},
		{"plain", "DATA", "C: ."},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			opt := smtptest.Options{LMTP: true}
			srv := smtptest.Start(t, opt)
			srv.LMTPStatus("full@example.org", 452, "4.2.2", "mailbox full")
			srv.LMTPStatus("gone@example.org", 550, "5.1.1", "no such mailbox")
			srv.RejectRcpt("bad@example.org", 550, "5.1.1", "unknown user")
			trace := newSyncBuffer()
			cfg := config(srv, opt)
			setMode(t, srv, &cfg, tt.mode)
			cfg.Debug = trace
			cn := mustDial(t, mustClient(t, cfg))
			to := []string{"ok@example.org", "full@example.org", "gone@example.org", "bad@example.org", "ok2@example.org"}
			res, err := cn.Send(context.Background(), "s@example.org", to, testMsg)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := statuses(res), "ok=delivered full=deferred(452) gone=rejected(550) bad=rejected(550) ok2=delivered"; got != want {
				t.Errorf("got %s, want %s", got, want)
			}
			if e := asError(t, res.Rcpts[2].Err); e.Command != tt.endCmd || e.Enhanced != "5.1.1" {
				t.Errorf("got %+v, want %s 5.1.1", e, tt.endCmd)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 || strings.Join(msgs[0].To, ",") != "ok@example.org,ok2@example.org" {
				t.Errorf("got %+v", msgs)
			}
			for _, want := range []string{"C: LHLO client.test", "C: MAIL FROM:<s@example.org>", "C: [message, 77 bytes]", tt.endLine, "S: 250 2.0.0 <ok@example.org>"} {
				if !strings.Contains(trace.String(), want) {
					t.Errorf("trace lacks %q:\n%s", want, trace)
				}
			}
			// The connection stays in step: the next message goes through.
			res, err = cn.Send(context.Background(), "s@example.org", []string{"next@example.org"}, testMsg)
			if err != nil || res.Rcpts[0].Status != Delivered {
				t.Errorf("next message: %s, %v", statuses(res), err)
			}
		})
	}
}

// TestLMTPDropAfterData drops the connection at RCPT TO: with DATA the
// message never left; with CHUNKING it left with the group, but a server
// that closed before it answered the RCPT TO never reached BDAT. Either
// way the recipient is Deferred.
func TestLMTPDropAfterData(t *testing.T) {
	for _, tt := range []struct{ mode, want string }{
		{"chunking", "a=deferred"},
		{"pipelining", "a=deferred"},
		{"plain", "a=deferred"},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			opt := smtptest.Options{LMTP: true}
			srv := smtptest.Start(t, opt)
			srv.DropAt("RCPT", 1)
			cfg := config(srv, opt)
			setMode(t, srv, &cfg, tt.mode)
			cn := mustDial(t, mustClient(t, cfg))
			res, err := cn.Send(context.Background(), "s@example.org", []string{"a@example.org"}, testMsg)
			wantTemp := tt.want == "a=deferred"
			if err == nil || IsFatal(err) || asError(t, err).Temporary != wantTemp {
				t.Fatalf("got %v, want an error, temporary %v", err, wantTemp)
			}
			if got := statuses(res); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}
