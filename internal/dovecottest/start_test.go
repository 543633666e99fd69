//go:build linux

package dovecottest

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// recorder stands in for the testing.TB given to start, so a test can watch
// start give up: Fatal and Skip record the message and end start's
// goroutine, as the testing package ends a test's; cleanups are kept for
// the test to run.
type recorder struct {
	testing.TB
	verdict  string // "fatal", "skip" or "ready"
	msg      string
	cleanups []func()
}

func (r *recorder) Helper()                           {}
func (r *recorder) Fatal(args ...any)                 { r.end("fatal", fmt.Sprint(args...)) }
func (r *recorder) Fatalf(format string, args ...any) { r.end("fatal", fmt.Sprintf(format, args...)) }
func (r *recorder) Skipf(format string, args ...any)  { r.end("skip", fmt.Sprintf(format, args...)) }
func (r *recorder) Cleanup(f func())                  { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Failed() bool                      { return r.verdict == "fatal" }

func (r *recorder) end(verdict, msg string) {
	r.verdict, r.msg = verdict, msg
	runtime.Goexit()
}

// startFake runs start, bounded by timeout, against a fake dovecot made of
// script, in which PIDFILE is replaced by a file the script appends the
// ids of its processes to. It runs start's cleanups and returns how start
// ended, how long it took and the ids written.
func startFake(t *testing.T, script string, timeout time.Duration) (r *recorder, took time.Duration, pids []int) {
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

	r = &recorder{TB: t}
	done := make(chan struct{})
	begin := time.Now()
	go func() {
		defer close(done)
		start(r, timeout)
		r.verdict = "ready"
	}()
	select {
	case <-done:
	case <-time.After(timeout + time.Minute):
		t.Fatalf("start still running %v after its %v timeout", time.Minute, timeout)
	}
	took = time.Since(begin)
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
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
	if r.verdict != "fatal" {
		t.Fatalf("got %s %q, want fatal", r.verdict, r.msg)
	}
	for _, want := range []string{"dovecot exited: exit status 89", "fake dovecot: cannot bind"} {
		if !strings.Contains(r.msg, want) {
			t.Errorf("got %q, want it to contain %q", r.msg, want)
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
			if r.verdict != tc.verdict {
				t.Fatalf("got %s %q, want %s", r.verdict, r.msg, tc.verdict)
			}
			if want := "dovecot did not start within 1s"; !strings.HasPrefix(r.msg, want) {
				t.Errorf("got %q, want it to start with %q", r.msg, want)
			}
			if !strings.Contains(r.msg, "context deadline exceeded") {
				t.Errorf("got %q, want it to name the deadline", r.msg)
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
