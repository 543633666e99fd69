package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mailrun/mailrun/internal/smtptest"
)

// TestPromptOnATerminal answers send's question through a real pseudo-
// terminal (util-linux script runs this test binary as mailrun on one): the
// plan comes first, "n" sends nothing and exits 0, "y" sends.
func TestPromptOnATerminal(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("script (util-linux) is missing but CI is set: %v", err)
		}
		t.Skipf("script (util-linux) is missing: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	e := newSendEnv(t, "newsletter", smtptest.Options{}, "")
	answer := func(input string) (string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// The command line is a shell's: the paths are quoted for it.
		line := "'" + self + "' send '" + e.dir + "'"
		cmd := exec.CommandContext(ctx, scriptBin, "-qec", line, "/dev/null")
		cmd.Env = append(os.Environ(), "MAILRUN_TEST_MAIN=1")
		cmd.Stdin = strings.NewReader(input)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("script: %v\n%s", err, out)
		}
		return string(out), code
	}
	if strings.ContainsAny(self+e.dir, "'") {
		t.Skip("a path holds a quote")
	}
	out, code := answer("n\n")
	if code != exitOK || !strings.Contains(out, "5 rows: 5 to send") || !strings.Contains(out, "Send now? [y/N]") ||
		!strings.Contains(out, "cancelled, nothing sent") {
		t.Errorf("answer n: got exit %d\n%s\nwant the plan, the question, nothing sent and exit 0", code, out)
	}
	if n := len(e.srv.Messages()); n != 0 {
		t.Fatalf("answer n: got %d messages, want none", n)
	}
	out, code = answer("y\n")
	if code != exitOK || !strings.Contains(out, "send: 5 sent") {
		t.Errorf("answer y: got exit %d\n%s\nwant 5 sent", code, out)
	}
	if n := len(e.srv.Messages()); n != 5 {
		t.Errorf("answer y: got %d messages, want 5", n)
	}
}
