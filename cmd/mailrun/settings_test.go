package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mailrun/mailrun/internal/smtptest"
)

// A relay or mailbox setting that the wire refuses is named by its line
// in the campaign file by send and bounces too, not only by check.
func TestSettingErrorsNameTheirLine(t *testing.T) {
	tests := []struct {
		name, cmd, yaml string
		want            *regexp.Regexp
	}{
		{"smtp security", "send", "smtp:\n  host: smtp.acme.example\n  security: ssl\n",
			regexp.MustCompile(`campaign\.yaml:\d+: smtp\.security: unknown security "ssl"`)},
		{"smtp helo", "send", "smtp:\n  host: 127.0.0.1\n  helo: a b\n",
			regexp.MustCompile(`campaign\.yaml:\d+: smtp\.helo: helo "a b" must be one host name`)},
		{"no relay", "send", "",
			regexp.MustCompile(`^mailrun send: \S*/newsletter/campaign\.yaml: smtp\.host: no relay configured \(add an smtp section or use --smtp URL\)\n$`)},
		{"no bounce mailbox", "bounces", "",
			regexp.MustCompile(`^mailrun bounces: \S*/newsletter/campaign\.yaml: bounces\.host: no bounce mailbox configured\n$`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyExample(t, "newsletter")
			appendFile(t, filepath.Join(dir, "campaign.yaml"), tc.yaml)
			args := []string{tc.cmd, dir}
			if tc.cmd == "send" {
				args = append(args, "--yes")
			}
			r := mailrun(t, nil, args...)
			r.want(t, exitUsage, tc.cmd)
			if !tc.want.MatchString(r.stderr) {
				t.Errorf("got stderr\n%s\nwant it to match %s", r.stderr, tc.want)
			}
		})
	}
}

// preview --limit 1 of a group campaign writes the one group message and
// succeeds (the limit reached is no error).
func TestPreviewLimitGroup(t *testing.T) {
	dir := copyExample(t, "group")
	out := filepath.Join(t.TempDir(), "out")
	r := mailrun(t, nil, "preview", dir, "-o", out, "--limit", "1")
	r.want(t, exitOK, "preview --limit 1")
	if !strings.Contains(r.stdout, "preview: 1 message written") {
		t.Errorf("got stdout %q, want the summary of one message", r.stdout)
	}
}

// A rerun says what the journal made it skip, and the flag that changes it.
func TestRerunNotesEarlierOutcomes(t *testing.T) {
	e := newSendEnv(t, "newsletter", smtptest.Options{}, "")
	mailrun(t, nil, "send", e.dir, "--yes").want(t, exitOK, "send")
	r := mailrun(t, nil, "send", e.dir, "--yes")
	r.want(t, exitOK, "rerun")
	if !strings.Contains(r.stderr, "skipped recipients settled by an earlier run: 5 sent") {
		t.Errorf("got stderr\n%s\nwant the note of 5 sent skipped", r.stderr)
	}
}

// Paths in messages are the paths the user typed, from where they stand:
// "newsletter/campaign.yaml:33", not "campaign.yaml:33".
func TestProblemPathsAsTyped(t *testing.T) {
	dir := copyExample(t, "newsletter")
	appendFile(t, filepath.Join(dir, "campaign.yaml"), "colour: blue\n")
	appendFile(t, filepath.Join(dir, "recipients.csv"), "not-an-address,No,Body,x9,free\n")
	t.Chdir(filepath.Dir(dir))
	r := mailrun(t, nil, "check", "newsletter")
	r.want(t, exitUsage, "check")
	if !regexp.MustCompile(`(?m)^newsletter/campaign\.yaml:\d+: colour: unknown key$`).MatchString(r.stdout) {
		t.Errorf("got\n%s\nwant newsletter/campaign.yaml:N: colour: unknown key", r.stdout)
	}
	t.Chdir(dir)
	r = mailrun(t, nil, "check", ".")
	if !regexp.MustCompile(`(?m)^campaign\.yaml:\d+: colour: unknown key$`).MatchString(r.stdout) {
		t.Errorf("from inside the folder: got\n%s\nwant campaign.yaml:N: colour: unknown key", r.stdout)
	}
}
