package mailing

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailrun/mailrun/internal/smtptest"
	"github.com/mailrun/mailrun/journal"
)

// The plan counts what a send would do without doing it: rows, earlier
// outcomes, suppressed, duplicates and problems, a limit, a journal in use
// or changed files.
func TestPlan(t *testing.T) {
	e := newRunEnv(t, "newsletter", smtptest.Options{}, "")
	runAppend(t, filepath.Join(e.dir, "recipients.csv"), "not-an-address,Bad,Row,x9,free\nZOE@example.org,Z,Z,z,free\n")
	if err := os.WriteFile(filepath.Join(e.dir, "unsubscribed.txt"), []byte("renee@example.fr\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runAppend(t, filepath.Join(e.dir, "campaign.yaml"), "suppress: [unsubscribed.txt]\n")
	var out bytes.Buffer
	pl, err := NewPlan(context.Background(), e.campaign(), SendOptions{}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if pl.Rows != 7 || pl.ToSend != 4 || pl.Invalid != 1 || pl.Duplicates != 1 || pl.Suppressed != 1 || !pl.Began.IsZero() {
		t.Errorf("got %+v, want 7 rows: 4 to send, 1 invalid, 1 duplicate, 1 suppressed, no journal", pl)
	}
	if !strings.Contains(out.String(), "recipients.csv:7: email: invalid address") {
		t.Errorf("got %q, want the invalid row printed", out.String())
	}
	if _, err := os.Stat(JournalPath(e.campaign())); !os.IsNotExist(err) {
		t.Errorf("got journal stat %v, want no journal made by a plan", err)
	}

	sum := e.mustRun(SendOptions{Limit: 2})
	if sum.Sent != 2 || !sum.Limited {
		t.Errorf("got %+v, want 2 sent and the limit reached", sum)
	}
	pl, err = NewPlan(context.Background(), e.campaign(), SendOptions{Limit: 1}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if pl.Earlier[journal.Sent] != 2 || pl.ToSend != 1 || pl.Began.IsZero() || pl.Changed != nil || pl.InUse {
		t.Errorf("got %+v, want 2 sent earlier, 1 to send (the limit), an unchanged journal", pl)
	}
	runAppend(t, filepath.Join(e.dir, "body.md"), "\nP.S.\n")
	pl, err = NewPlan(context.Background(), e.campaign(), SendOptions{}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if pl.Changed == nil || !strings.Contains(pl.Changed.Error(), "body.md") {
		t.Errorf("got changed %v, want body.md named", pl.Changed)
	}
}
