package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mailrun/mailrun/internal/smtptest"
)

// Exit codes of send beyond delivery failures (README: 1 some recipients
// failed, 2 usage or configuration error).
func TestSendExitCodes(t *testing.T) {
	// A row that cannot be sent (invalid address): the others go, but the
	// run did not reach everybody, so the exit code says so.
	e := newSendEnv(t, "newsletter", smtptest.Options{}, "")
	appendFile(t, filepath.Join(e.dir, "recipients.csv"), "not-an-address,Bad,Row,x9,free\n")
	r := mailrun(t, nil, "send", e.dir, "--yes")
	r.want(t, exitFailed, "send with an invalid row")
	if got := len(e.srv.Messages()); got != 5 {
		t.Errorf("got %d messages, want the 5 valid rows sent", got)
	}

	// A journal that cannot be read: nothing is sent, the setup is wrong.
	e = newSendEnv(t, "newsletter", smtptest.Options{}, "")
	if err := os.WriteFile(filepath.Join(e.dir, "november-news.journal"), []byte("garbage\n{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = mailrun(t, nil, "send", e.dir, "--yes")
	r.want(t, exitUsage, "send with a corrupt journal")
	if got := len(e.srv.Messages()); got != 0 {
		t.Errorf("got %d messages, want none", got)
	}
}
