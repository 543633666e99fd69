package mailing

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/mailrun/mailrun/internal/smtptest"
)

func TestTestSend(t *testing.T) {
	e := newRunEnv(t, "newsletter", smtptest.Options{}, "")
	c := e.campaign()
	p := e.pool(c)
	ctx := context.Background()
	for _, tc := range []struct {
		only, row, subject string
	}{
		{"", "zoe@example.org", "[TEST] Zoë, what's new at Acme in November"},
		{"4", "lilei@example.com", "[TEST] 李雷, what's new at Acme in November"},
		{"Olafur@Example.IS", "olafur@example.is", "[TEST] Ólafur, what's new at Acme in November"},
	} {
		t.Run("only="+tc.only, func(t *testing.T) {
			before := len(e.srv.Messages())
			rec, err := TestSend(ctx, c, p, "tester@example.com", tc.only)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Email != tc.row {
				t.Errorf("got recipient %q, want %q", rec.Email, tc.row)
			}
			msgs := e.srv.Messages()
			if len(msgs) != before+1 {
				t.Fatalf("got %d new messages, want 1", len(msgs)-before)
			}
			m := msgs[len(msgs)-1]
			if !slices.Equal(m.To, []string{"tester@example.com"}) {
				t.Errorf("got envelope %v, want only the test address", m.To)
			}
			if got := subjectOf(t, m.Data); got != tc.subject {
				t.Errorf("got subject %q, want %q", got, tc.subject)
			}
		})
	}
	for _, a := range newsletterAddrs {
		if n := e.srv.Deliveries(a); n != 0 {
			t.Errorf("<%s>: got %d deliveries, want none from a test send", a, n)
		}
	}
	if _, err := os.Stat(JournalPath(c)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got journal stat %v, want no journal from a test send", err)
	}
	if _, err := TestSend(ctx, c, p, "tester@example.com", "99"); !errors.Is(err, ErrNoRecipient) || !strings.Contains(err.Error(), `"99"`) {
		t.Errorf("got %v, want ErrNoRecipient naming 99", err)
	}
	if _, err := TestSend(ctx, c, p, "bad\r\nBcc: x@example.org", ""); err == nil {
		t.Error("got no error for a test address with CR/LF, want one")
	}
}

func TestTestSendGroup(t *testing.T) {
	e := newRunEnv(t, "group", smtptest.Options{}, "")
	c := e.campaign()
	rec, err := TestSend(context.Background(), c, e.pool(c), "tester@example.com", "")
	if err != nil || rec.Row != 0 {
		t.Fatalf("got %+v, %v, want the group message (row 0)", rec, err)
	}
	msgs := e.srv.Messages()
	if len(msgs) != 1 || !slices.Equal(msgs[0].To, []string{"tester@example.com"}) {
		t.Fatalf("got %v, want one message to the test address only", msgs)
	}
	if got := subjectOf(t, msgs[0].Data); got != "[TEST] Team offsite on Thursday 10 December" {
		t.Errorf("got subject %q", got)
	}
}

// subjectOf parses a message and returns its decoded Subject.

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
