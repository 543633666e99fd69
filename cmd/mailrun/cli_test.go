package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mailrun/mailrun/internal/smtptest"
)

// The command line's own conventions: version, help for a command, -h and
// --help exit 0 with that command's flags spelled as the README spells them.
func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := mailrun(t, nil, args...)
		r.want(t, exitOK, strings.Join(args, " "))
		if !strings.HasPrefix(r.stdout, "mailrun ") || !strings.Contains(r.stdout, "go1.") {
			t.Errorf("%v: got %q, want mailrun's version and Go's", args, r.stdout)
		}
	}
	for _, args := range [][]string{{"help", "send"}, {"send", "-h"}, {"send", "--help"}} {
		r := mailrun(t, nil, args...)
		r.want(t, exitOK, strings.Join(args, " "))
		for _, want := range []string{"Usage: mailrun send CAMPAIGN", "--yes", "--smtp URL", "--journal PATH"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%v: got\n%s\nwant %q", args, r.stdout, want)
			}
		}
		if strings.Contains(r.stdout, "\n  -yes") {
			t.Errorf("%v: got a flag spelled -yes, want --yes", args)
		}
		if strings.Count(r.stdout, "Usage:") != 1 || r.stderr != "" {
			t.Errorf("%v: want the help once, on stdout; got stdout\n%s\nstderr\n%s", args, r.stdout, r.stderr)
		}
	}
	r := mailrun(t, nil, "check", "-h")
	r.want(t, exitOK, "check -h")
	if !strings.Contains(r.stdout, "Usage: mailrun check CAMPAIGN") {
		t.Errorf("check -h: got %q, want check's usage", r.stdout)
	}
	r = mailrun(t, nil, "check")
	r.want(t, exitUsage, "check without a campaign")
	if !strings.Contains(r.stderr, "want 1 argument(s)") || !strings.Contains(r.stderr, "Usage: mailrun check") {
		t.Errorf("check: got stderr %q, want the count and the usage", r.stderr)
	}
	r = mailrun(t, nil, "help")
	r.want(t, exitOK, "help")
	if !strings.Contains(r.stdout, "mailrun version") || !strings.Contains(r.stdout, `mailrun help COMMAND`) {
		t.Errorf("help: got %q, want the command list", r.stdout)
	}
}

// The campaign init writes sends to a development server once its smtp
// block is uncommented: no TLS, no AUTH, port 1025 (here the test server's).
func TestInitScaffoldSends(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	mailrun(t, nil, "init", dir).want(t, exitOK, "init")
	srv := smtptest.Start(t, smtptest.Options{})
	path := filepath.Join(dir, "campaign.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	block := 0 // 1 inside the first commented smtp block, 2 after it
	for _, l := range strings.Split(string(data), "\n") {
		switch {
		case block == 0 && l == "# smtp:":
			block = 1
		case block == 1 && !strings.HasPrefix(l, "# "):
			block = 2
		}
		if block == 1 {
			l = strings.TrimPrefix(l, "# ")
			l = strings.Replace(l, "port: 1025", "port: "+strconv.Itoa(srv.Port()), 1)
		}
		out = append(out, l)
	}
	if err := os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	r := mailrun(t, nil, "send", dir, "--yes")
	r.want(t, exitOK, "send of the init campaign")
	if got := len(srv.Messages()); got != 2 {
		t.Errorf("got %d messages, want the 2 rows of the scaffold", got)
	}
}

// A login set for a relay that offers no AUTH (a development server) says
// exactly that and how to fix it, and marks nobody failed.
func TestLoginWithoutAuthOffered(t *testing.T) {
	e := newSendEnv(t, "newsletter", smtptest.Options{Mechanisms: []string{}}, "")
	t.Setenv(testPasswordEnv, "pw")
	appendFile(t, filepath.Join(e.dir, "campaign.yaml"), "  username: u\n  password_env: "+testPasswordEnv+"\n")
	r := mailrun(t, nil, "send", e.dir, "--yes")
	r.want(t, exitUsage, "send with a login to a relay without AUTH")
	if !strings.Contains(r.stderr, "relay offers no AUTH: if it needs no login, leave out smtp.username") {
		t.Errorf("got stderr\n%s\nwant the cause and the fix", r.stderr)
	}
	if !strings.Contains(r.stdout, "0 sent, 0 failed") {
		t.Errorf("got stdout\n%s\nwant nobody failed", r.stdout)
	}
}
