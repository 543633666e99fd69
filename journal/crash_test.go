//go:build unix

package journal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The child process modes, chosen by JOURNAL_CHILD; the path comes in
// JOURNAL_PATH.
const (
	childLock  = "lock"
	childWrite = "write"
	crashConc  = 4       // workers in the write child
	crashLimit = 100_000 // recipients per worker: bounds the child's loop
	exitLocked = 3
)

// TestHelperProcess is not a test: it is the body of the child processes
// the tests below start by re-running the test binary.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("JOURNAL_CHILD")
	if mode == "" {
		t.Skip("child process body; run by the subprocess tests")
	}
	path := os.Getenv("JOURNAL_PATH")
	j, err := Open(path, Header{Command: "child"}, lower)
	if errors.Is(err, ErrLocked) {
		os.Exit(exitLocked)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if mode == childLock {
		os.Exit(0)
	}
	// childWrite: send-like workers; a row is printed only once its
	// outcome is durable, so the parent knows what must survive kill -9.
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := range crashConc {
		wg.Go(func() {
			for i := range crashLimit {
				row := w*crashLimit + i
				addr := fmt.Sprintf("r%d@example.org", row)
				if err := j.Record(Entry{Row: row, Email: addr, Status: Sending}); err != nil {
					os.Exit(1)
				}
				if err := j.Record(Entry{Row: row, Email: addr, Status: Sent}); err != nil {
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintln(out, row)
				out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	j.Close()
	os.Exit(0)
}

func child(ctx context.Context, mode, path string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "JOURNAL_CHILD="+mode, "JOURNAL_PATH="+path)
	cmd.Stderr = os.Stderr
	return cmd
}

func TestLockedAcrossProcesses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Header{})
	err := child(ctx, childLock, path).Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitLocked {
		t.Fatalf("child Open while we hold the lock: got %v, want exit %d (ErrLocked)", err, exitLocked)
	}
	j.Close()
	if err := child(ctx, childLock, path).Run(); err != nil {
		t.Fatalf("child Open after Close: %v", err)
	}
}

// TestKill9 kills a writing process at an arbitrary point and checks the
// invariants a rerun relies on: the journal loads, every outcome the child
// saw acknowledged is there, and at most one recipient per worker is left
// unknown.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a subprocess")
	}
	for round := range 3 {
		t.Run(strconv.Itoa(round), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			path := filepath.Join(t.TempDir(), "j")
			cmd := child(ctx, childWrite, path)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			acked := make(map[int]bool)
			sc := bufio.NewScanner(stdout)
			for len(acked) < 200*(round+1) && sc.Scan() {
				row, err := strconv.Atoi(sc.Text())
				if err != nil {
					t.Fatalf("child said %q", sc.Text())
				}
				acked[row] = true
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			for sc.Scan() { // rows acknowledged before the kill landed
				if row, err := strconv.Atoi(sc.Text()); err == nil {
					acked[row] = true
				}
			}
			cmd.Wait()
			// Killed before Close, the child leaves the zeros written
			// ahead of its data: Open must cut them.
			if b, err := os.ReadFile(path); err != nil || len(b) == 0 || b[len(b)-1] != 0 {
				t.Errorf("file after kill -9: %d bytes, %v, want it to end in zeros", len(b), err)
			}

			j, err := Open(path, Header{Command: "rerun"}, lower)
			if err != nil {
				t.Fatalf("Open after kill -9: %v", err)
			}
			defer j.Close()
			for row := range acked {
				if st, _ := j.Status(fmt.Sprintf("r%d@example.org", row)); st != Sent {
					t.Errorf("row %d: acknowledged as sent, reads %q", row, st)
				}
			}
			c := j.Counts()
			if c.Unknown > crashConc || c.Sending != 0 || c.Sent < len(acked) {
				t.Errorf("after kill -9: got %+v with %d acknowledged, want sent >= acknowledged and unknown <= %d", c, len(acked), crashConc)
			}
			t.Logf("killed after %d acknowledged: %+v", len(acked), c)
		})
	}
}
