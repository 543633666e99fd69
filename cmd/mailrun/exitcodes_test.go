package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/internal/smtptest"
	"github.com/mailrun/mailrun/journal"
)

// Exit codes of send beyond delivery failures (README: 1 some recipients
// failed, 2 usage or configuration error).
func TestSendExitCodes(t *testing.T) {
	// A journal that cannot be read: nothing is sent, the setup is wrong.
	e := newSendEnv(t, "newsletter", smtptest.Options{}, "")
	if err := os.WriteFile(filepath.Join(e.dir, "november-news.journal"), []byte("garbage\n{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := mailrun(t, nil, "send", e.dir, "--yes")
	r.want(t, exitUsage, "send with a corrupt journal")
	if got := len(e.srv.Messages()); got != 0 {
		t.Errorf("got %d messages, want none", got)
	}
}

// The README's exit codes, one table for the commands that read a
// campaign, so that check, preview and send cannot drift apart again: 2
// when the campaign itself cannot be used (a problem that is not one
// row's), 1 when some rows had problems and the others went through, 0
// only when every row did. status reports the state, "no send yet"
// included, and exits 0.
func TestExitCodes(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(t *testing.T, dir string)
		// want is the exit code of check, preview, send and status.
		want [4]int
		// sent is the number of messages the relay gets.
		sent int
	}{
		{"no problem", func(*testing.T, string) {}, [4]int{exitOK, exitOK, exitOK, exitOK}, 5},
		{"campaign-level: a subject template that does not parse", func(t *testing.T, dir string) {
			replaceInFile(t, filepath.Join(dir, "campaign.yaml"), `subject: "{{.first_name}},`, `subject: "{{.first_name,`)
		}, [4]int{exitUsage, exitUsage, exitUsage, exitOK}, 0},
		// send refuses to start: nothing is half-sent; --skip-invalid
		// sends the others (TestSendPlanRefusesAndLimits).
		{"row-level: one invalid address", func(t *testing.T, dir string) {
			appendFile(t, filepath.Join(dir, "recipients.csv"), "not-an-address,Bad,Row,x9,free\n")
		}, [4]int{exitFailed, exitFailed, exitFailed, exitOK}, 0},
		{"row-level: a template that fails for one row", func(t *testing.T, dir string) {
			appendFile(t, filepath.Join(dir, "campaign.yaml"), "attachments:\n  - \"files/{{.plan}}.txt\"\n")
			if err := os.MkdirAll(filepath.Join(dir, "files"), 0o755); err != nil {
				t.Fatal(err)
			}
			// Only "pro" has its file: the "free" rows cannot be rendered.
			if err := os.WriteFile(filepath.Join(dir, "files", "pro.txt"), []byte("pro\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, [4]int{exitFailed, exitFailed, exitFailed, exitOK}, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newSendEnv(t, "newsletter", smtptest.Options{}, "")
			tc.spoil(t, e.dir)
			out := filepath.Join(t.TempDir(), "out")
			for i, args := range [][]string{
				{"check", e.dir},
				{"preview", e.dir, "-o", out},
				{"send", e.dir, "--yes"},
				{"status", e.dir},
			} {
				r := mailrun(t, nil, args...)
				r.want(t, tc.want[i], args[0])
			}
			if got := len(e.srv.Messages()); tc.sent >= 0 && got != tc.sent {
				t.Errorf("got %d messages, want %d", got, tc.sent)
			}
			files, _ := filepath.Glob(filepath.Join(out, "*.eml"))
			if tc.want[0] == exitUsage && len(files) != 0 {
				t.Errorf("preview wrote %d files for a campaign that cannot be used, want none", len(files))
			}
		})
	}
}

// replaceInFile replaces old, which must be there, with new in the file.
func replaceInFile(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s has no %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Rows with problems stop a send before anything goes, with or without a
// terminal; --skip-invalid sends to the others. --limit sends to the first
// N new recipients, and the next run goes on after them.
func TestSendPlanRefusesAndLimits(t *testing.T) {
	e := newSendEnv(t, "newsletter", smtptest.Options{}, "")
	appendFile(t, filepath.Join(e.dir, "recipients.csv"), "not-an-address,Bad,Row,x9,free\n")
	r := mailrun(t, nil, "send", e.dir, "--yes")
	r.want(t, exitFailed, "send with an invalid row")
	if !strings.Contains(r.stderr, "recipients.csv:7: email: invalid address") || !strings.Contains(r.stderr, "--skip-invalid") {
		t.Errorf("got stderr\n%s\nwant the row's problem and the way to go on", r.stderr)
	}
	if got := len(e.srv.Messages()); got != 0 {
		t.Fatalf("got %d messages, want none before --skip-invalid", got)
	}
	r = mailrun(t, nil, "send", e.dir, "--yes", "--skip-invalid", "--limit", "2")
	r.want(t, exitOK, "send --skip-invalid --limit 2") // the invalid row comes later
	if !strings.Contains(r.stdout, "limit reached") {
		t.Errorf("got stdout\n%s\nwant the summary to say the limit stopped the run", r.stdout)
	}
	if got := len(e.srv.Messages()); got != 2 {
		t.Errorf("got %d messages, want the first 2", got)
	}
	r = mailrun(t, nil, "send", e.dir, "--yes", "--skip-invalid")
	r.want(t, exitFailed, "send --skip-invalid")
	if !strings.Contains(r.stdout, "6 rows: 3 to send, 2 settled by earlier runs (resuming), 1 with problems") {
		t.Errorf("got stdout\n%s\nwant the plan of the resumed run", r.stdout)
	}
	if got := len(e.srv.Messages()); got != 5 {
		t.Errorf("got %d messages, want all 5 valid rows once", got)
	}
}

// status before a send, after part of one and while one holds the
// journal: the list's size and what is not yet sent, and in-flight
// messages as in flight, not unknown.
func TestStatusStates(t *testing.T) {
	e := newSendEnv(t, "newsletter", smtptest.Options{}, "")
	r := mailrun(t, nil, "status", e.dir)
	r.want(t, exitOK, "status before a send")
	if !strings.Contains(r.stdout, "no send yet") || !strings.Contains(r.stdout, "5 rows: 5 not yet sent") {
		t.Errorf("before: got %q", r.stdout)
	}
	mailrun(t, nil, "send", e.dir, "--yes", "--limit", "2").want(t, exitOK, "send --limit 2")
	r = mailrun(t, nil, "status", e.dir)
	r.want(t, exitOK, "status after part of a send")
	if !strings.Contains(r.stdout, "2 recipients: 2 sent") || !strings.Contains(r.stdout, "5 rows: 3 not yet sent") {
		t.Errorf("after --limit 2: got %q", r.stdout)
	}
	// A send that holds the journal with an intent on record: in flight.
	j, err := journal.Open(filepath.Join(e.dir, "november-news.journal"), journal.Header{Campaign: "november-news"}, campaign.AddrKey)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.Record(journal.Entry{Row: 4, Email: "lilei@example.com", Status: journal.Sending}); err != nil {
		t.Fatal(err)
	}
	r = mailrun(t, nil, "status", e.dir)
	r.want(t, exitOK, "status during a send")
	if !strings.Contains(r.stdout, "a send is running now") || !strings.Contains(r.stdout, "0 unknown, 0 skipped, 0 bounced, 1 in flight") {
		t.Errorf("during: got %q, want the in-flight message as in flight", r.stdout)
	}
}
