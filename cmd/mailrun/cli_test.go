package main

import (
	"strings"
	"testing"
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
