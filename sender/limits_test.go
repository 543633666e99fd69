package sender

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailrun/mailrun/internal/smtptest"
)

// TestPoolServerErrorLimit is the first item of issue 9: Postfix
// (smtpd_hard_error_limit) and Exim end a connection after about ten
// refused commands, with a 421 or without a word. A list always has dead
// addresses; each must be Rejected, and every valid recipient delivered
// exactly once, never Unknown, in every mode, one recipient per message
// or all in one; and also, one recipient per message, when the relay's
// limit is below maxRefusals (Postfix under stress allows 1 error).
func TestPoolServerErrorLimit(t *testing.T) {
	var to []string
	dead := map[string]bool{}
	for i := range 45 {
		a := fmt.Sprintf("r%d@example.org", i)
		if i%3 == 1 { // 15 unknown users among 30 valid ones
			a = fmt.Sprintf("gone%d@example.org", i)
			dead[a] = true
		}
		to = append(to, a)
	}
	for _, mode := range []string{"chunking", "pipelining", "plain"} {
		for _, v := range []struct {
			limit         int
			silent, group bool
		}{{10, false, false}, {10, true, false}, {10, false, true}, {10, true, true}, {1, false, false}, {1, true, false}} {
			t.Run(fmt.Sprintf("%s/limit=%d/silent=%v/group=%v", mode, v.limit, v.silent, v.group), func(t *testing.T) {
				opt := smtptest.Options{ErrorLimit: v.limit, ErrorLimitSilent: v.silent}
				srv := smtptest.Start(t, opt)
				for a := range dead {
					srv.RejectRcpt(a, 550, "5.1.1", "no such user")
				}
				cfg := config(srv, opt)
				setMode(t, srv, &cfg, mode)
				p := NewPool(mustClient(t, cfg), PoolConfig{Concurrency: 1, Retries: 3, Backoff: time.Millisecond})
				t.Cleanup(func() { _ = p.Close() })
				got := map[string]RcptResult{}
				send := func(to []string) {
					res, err := p.Send(context.Background(), "s@example.org", to, testMsg)
					if err != nil {
						t.Fatalf("send %v: %v", to, err)
					}
					for _, rr := range res.Rcpts {
						got[rr.Addr] = rr
					}
				}
				if v.group {
					send(to)
				} else {
					for _, a := range to {
						send([]string{a})
					}
				}
				for _, a := range to {
					rr := got[a]
					want, n := Delivered, 1
					if dead[a] {
						want, n = Rejected, 0
					}
					if rr.Status != want {
						t.Errorf("%s: got %s (%v), want %s", a, rr.Status, rr.Err, want)
					}
					if d := srv.Deliveries(a); d != n {
						t.Errorf("%s: delivered %d times, want %d", a, d, n)
					}
					if want == Rejected && !strings.HasPrefix(fmt.Sprint(rr.Err), "RCPT TO: 550 5.1.1") {
						t.Errorf("%s: got %v, want the RCPT TO refusal", a, rr.Err)
					}
				}
			})
		}
	}
}
