//go:build linux

package dovecottest

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailrun/mailrun/internal/servertest"
)

// startFake runs start, bounded by timeout, against a fake dovecot made of
// script, in which PIDFILE is replaced by a file the script appends the
// ids of its processes to. It runs start's cleanups and returns how start
// ended, how long it took and the ids written.
func startFake(t *testing.T, script string, timeout time.Duration) (r *servertest.Recorder, took time.Duration, pids []int) {
	t.Helper()
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("dovecot"); err != nil {
			t.Skip("as root, start needs the dovecot user")
		}
	}
	bin := t.TempDir()
	pidFile := filepath.Join(bin, "pids")
	script = strings.ReplaceAll(script, "PIDFILE", pidFile)
	must(t, os.WriteFile(filepath.Join(bin, "dovecot"), []byte("#!/bin/sh\n"+script), 0o755))
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	r = &servertest.Recorder{TB: t}
	took = r.Watch(timeout, func() { start(r, timeout) })
	data, _ := os.ReadFile(pidFile)
	for _, f := range strings.Fields(string(data)) {
		pid, err := strconv.Atoi(f)
		must(t, err)
		pids = append(pids, pid)
	}
	if len(pids) == 0 {
		t.Fatal("the fake dovecot never ran")
	}
	return r, took, pids
}

// alive reports whether pid is a process that has not exited: a zombie
// waiting for a parent that does not reap orphans counts as dead.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || !strings.HasPrefix(string(stat[i+1:]), " Z")
}

func assertDead(t *testing.T, pids []int) {
	t.Helper()
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d of the fake dovecot survived start's cleanup", pid)
		}
	}
}

// A Dovecot that exits at once (a port taken, a bad setting) fails the
// test with its output, even when a child it left behind holds the output
// pipe open: it once made Start wait forever.
func TestStartDovecotExits(t *testing.T) {
	t.Setenv("CI", "")
	r, took, pids := startFake(t, `sleep 300 &
echo $$ $! >>PIDFILE
echo "fake dovecot: cannot bind" >&2
exit 89
`, startTimeout)
	if r.Verdict != "fatal" {
		t.Fatalf("got %s %q, want fatal", r.Verdict, r.Msg)
	}
	for _, want := range []string{"dovecot exited: exit status 89", "fake dovecot: cannot bind"} {
		if !strings.Contains(r.Msg, want) {
			t.Errorf("got %q, want it to contain %q", r.Msg, want)
		}
	}
	if got, want := len(pids), 2*3; got != want {
		t.Errorf("got %d processes, want %d: three attempts", got, want)
	}
	// Three attempts, each ended by exec's WaitDelay; the bound is generous.
	if took > 30*time.Second {
		t.Errorf("start gave up after %v, want well under 30s", took)
	}
	assertDead(t, pids)
}

// A Dovecot that never answers is killed at the deadline; the test is
// skipped, or fails under CI.
func TestStartTimeout(t *testing.T) {
	for _, tc := range []struct{ ci, verdict string }{{"", "skip"}, {"true", "fatal"}} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r, took, pids := startFake(t, `sleep 300 &
echo $$ $! >>PIDFILE
wait
`, time.Second)
			if r.Verdict != tc.verdict {
				t.Fatalf("got %s %q, want %s", r.Verdict, r.Msg, tc.verdict)
			}
			if want := "dovecot did not start within 1s"; !strings.HasPrefix(r.Msg, want) {
				t.Errorf("got %q, want it to start with %q", r.Msg, want)
			}
			if !strings.Contains(r.Msg, "context deadline exceeded") {
				t.Errorf("got %q, want it to name the deadline", r.Msg)
			}
			if got, want := len(pids), 2; got != want {
				t.Errorf("got %d processes, want %d: one attempt", got, want)
			}
			if took < time.Second || took > 15*time.Second {
				t.Errorf("start gave up after %v, want between 1s and 15s", took)
			}
			assertDead(t, pids)
		})
	}
}
