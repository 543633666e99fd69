package mailing

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/internal/smtptest"
	"github.com/mailrun/mailrun/journal"
)

// The first Ctrl-C stops recipients that only wait for the rate limiter:
// they are not in flight, get no journal entry, and the next run sends
// them. With 1/m, a message still waiting would otherwise go a minute
// after the interrupt.
func TestRunStopWhileRateLimited(t *testing.T) {
	e := newRunEnv(t, "newsletter", smtptest.Options{}, "  rate: 1/m\n  burst: 1\n  concurrency: 2\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sent atomic.Int64
	sum, _, err := e.run(ctx, SendOptions{Progress: func(en journal.Entry) {
		if en.Status == journal.Sent && sent.Add(1) == 1 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want the interrupt", err)
	}
	if sum.Sent != 1 || sum.Deferred != 0 || sum.Unknown != 0 {
		t.Errorf("got %s, want 1 sent and nothing else settled", sum)
	}
	if got := len(e.journal()); got != 1 {
		t.Errorf("journal holds %d recipients, want only the one sent", got)
	}
	// The rerun, unlimited, sends the others exactly once.
	e2 := e.campaign()
	e2.Send.Rate = ""
	p := e.pool(e2)
	var out bytes.Buffer
	if _, err := Send(context.Background(), e2, p, SendOptions{Out: &out}); err != nil {
		t.Fatalf("rerun: %v\n%s", err, out.String())
	}
	e.wantDeliveries(allOf(newsletterAddrs, 1))
}

// --smtp pointed at another host must not carry the campaign's login
// there, unless the URL names the user.
func TestOverrideSMTPCredentials(t *testing.T) {
	c := &campaign.Campaign{SMTP: campaign.SMTP{Host: "smtp.acme.example", Port: 587, Security: "starttls", Username: "news@acme.example", PasswordEnv: "SMTP_PASSWORD"}}
	for _, tc := range []struct {
		url, user, env string
	}{
		{"smtp://127.0.0.1:1025?security=none", "", ""},
		{"smtps://other@mail.partner.example", "other", "SMTP_PASSWORD"},
		{"smtps://smtp.acme.example:465", "news@acme.example", "SMTP_PASSWORD"},
	} {
		cc := *c
		if err := OverrideSMTP(&cc, tc.url); err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		if cc.SMTP.Username != tc.user || cc.SMTP.PasswordEnv != tc.env {
			t.Errorf("%s: got user %q, password_env %q; want %q, %q", tc.url, cc.SMTP.Username, cc.SMTP.PasswordEnv, tc.user, tc.env)
		}
	}
}

// A test message must not let the tester unsubscribe the real recipient.
func TestTestSendHasNoUnsubscribe(t *testing.T) {
	e := newRunEnv(t, "newsletter", smtptest.Options{}, "")
	c := e.campaign()
	if _, err := TestSend(context.Background(), c, e.pool(c), "tester@example.com", ""); err != nil {
		t.Fatal(err)
	}
	msgs := e.srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	if bytes.Contains(msgs[0].Data, []byte("List-Unsubscribe")) {
		t.Error("the test message carries List-Unsubscribe, want none")
	}
}

// A run that cannot start is a setup problem, not a delivery failure.
func TestRunSetupError(t *testing.T) {
	e := newRunEnv(t, "newsletter", smtptest.Options{}, "")
	if err := os.WriteFile(JournalPath(e.campaign()), []byte("this is not a journal line\n{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := e.run(context.Background(), SendOptions{})
	var se *SetupError
	if !errors.As(err, &se) {
		t.Fatalf("got %v (%T), want a *SetupError", err, err)
	}
}
