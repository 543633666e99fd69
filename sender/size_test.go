package sender

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mailrun/mailrun/internal/smtptest"
)

// TestSendSize checks SIZE (RFC 1870) in every mode: MAIL FROM declares
// the size; a message over the relay's limit is not sent at all (not one
// write) and its recipients are Rejected with a *SizeError naming both
// sizes, not fatal; the connection goes on with a smaller message.
func TestSendSize(t *testing.T) {
	small := testMsg
	big := append(bytes.Repeat([]byte("x"), 2000), "\r\n"...)
	for _, mode := range []string{"chunking", "pipelining", "plain"} {
		t.Run(mode, func(t *testing.T) {
			opt := smtptest.Options{MaxMessageBytes: 1000}
			srv := smtptest.Start(t, opt)
			cfg := config(srv, opt)
			setMode(t, srv, &cfg, mode)
			trace := newSyncBuffer()
			cfg.Debug = trace
			cn := mustDial(t, mustClient(t, cfg))
			before := cn.raw.writes.Load()
			res, err := cn.Send(context.Background(), "s@example.org", []string{"a@example.org", "b@example.org"}, big)
			if got := statuses(res); got != "a=rejected b=rejected" {
				t.Errorf("got %s, want both rejected", got)
			}
			var se *SizeError
			if !errors.As(err, &se) || se.Size != 2002 || se.Limit != 1000 || IsFatal(err) || asError(t, err).Temporary {
				t.Fatalf("got %v, want a permanent, non-fatal *SizeError of 2002 over 1000", err)
			}
			if want := "MAIL FROM: the message is 2002 bytes, over the relay's limit of 1000 bytes (SIZE, RFC 1870)"; err.Error() != want {
				t.Errorf("got %q, want %q", err, want)
			}
			if !errors.As(res.Rcpts[1].Err, &se) {
				t.Errorf("recipient error %v holds no *SizeError", res.Rcpts[1].Err)
			}
			if n := cn.raw.writes.Load() - before; n != 0 || len(srv.Envelopes()) != 0 {
				t.Errorf("got %d writes and %d envelopes for an over-size message, want none", n, len(srv.Envelopes()))
			}
			res, err = cn.Send(context.Background(), "s@example.org", []string{"c@example.org"}, small)
			if err != nil || statuses(res) != "c=delivered" {
				t.Fatalf("small message: %s, %v", statuses(res), err)
			}
			if !strings.Contains(trace.String(), "C: MAIL FROM:<s@example.org> SIZE=77 ") {
				t.Errorf("MAIL FROM does not declare SIZE=77:\n%s", trace)
			}
		})
	}
}

// TestSendSizeRefused: a relay that refuses the declared size itself (552
// to MAIL FROM, RFC 1870 section 6.1) rejects the message's recipients
// without making the refusal fatal, and the Pool does not retry it.
func TestSendSizeRefused(t *testing.T) {
	for _, mode := range []string{"chunking", "pipelining", "plain"} {
		t.Run(mode, func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.Options{})
			srv.FailCommand("MAIL", 1, 552, "5.3.4", "message too big for system")
			cfg := config(srv, smtptest.Options{})
			setMode(t, srv, &cfg, mode)
			p := NewPool(mustClient(t, cfg), PoolConfig{Retries: 3, Backoff: time.Hour})
			t.Cleanup(func() { _ = p.Close() })
			res, err := p.Send(context.Background(), "s@example.org", []string{"a@example.org"}, testMsg)
			var se *SizeError
			if err != nil || statuses(res) != "a=rejected(552)" || res.Attempts != 1 || !errors.As(res.Rcpts[0].Err, &se) || se.Size != int64(len(testMsg)) {
				t.Errorf("got %s after %d attempts, %v (%v); want a=rejected(552) after 1 with a *SizeError", statuses(res), res.Attempts, err, res.Rcpts[0].Err)
			}
			res, err = p.Send(context.Background(), "s@example.org", []string{"b@example.org"}, testMsg)
			if err != nil || statuses(res) != "b=delivered" {
				t.Errorf("next message: %s, %v", statuses(res), err)
			}
		})
	}
}
