package servertest

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// Recorder stands in for the testing.TB given to a helper's start, so a
// test can watch start give up: Fatal and Skip record the message and end
// start's goroutine, as the testing package ends a test's; cleanups are
// kept for Watch to run. Everything else goes to the embedded TB.
type Recorder struct {
	testing.TB
	// Verdict is "fatal", "skip" or "ready"; Msg is the message of Fatal
	// or Skip.
	Verdict, Msg string
	// Quiet drops Logf, for a start whose cleanups print long logs when
	// it fails.
	Quiet bool

	cleanups []func()
}

// Helper does nothing: the recorder has no stack of its own to mark.
func (r *Recorder) Helper() {}

// Fatal records a "fatal" verdict and ends the calling goroutine.
func (r *Recorder) Fatal(args ...any) { r.end("fatal", fmt.Sprint(args...)) }

// Fatalf records a "fatal" verdict and ends the calling goroutine.
func (r *Recorder) Fatalf(format string, args ...any) { r.end("fatal", fmt.Sprintf(format, args...)) }

// Skipf records a "skip" verdict and ends the calling goroutine.
func (r *Recorder) Skipf(format string, args ...any) { r.end("skip", fmt.Sprintf(format, args...)) }

// Cleanup keeps f for Watch to run.
func (r *Recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

// Failed reports whether the verdict is "fatal".
func (r *Recorder) Failed() bool { return r.Verdict == "fatal" }

// Logf passes the line to the embedded TB, unless Quiet is set.
func (r *Recorder) Logf(format string, args ...any) {
	if !r.Quiet {
		r.TB.Logf(format, args...)
	}
}

func (r *Recorder) end(verdict, msg string) {
	r.Verdict, r.Msg = verdict, msg
	runtime.Goexit()
}

// Watch runs start, which should be bounded by timeout, in a goroutine of
// its own, sets Verdict to "ready" if it returns, runs the cleanups it
// registered, last first, and returns how long start took. Watch fails the
// embedded TB when start still runs a minute after timeout.
func (r *Recorder) Watch(timeout time.Duration, start func()) time.Duration {
	done := make(chan struct{})
	begin := time.Now()
	go func() {
		defer close(done)
		start()
		r.Verdict = "ready"
	}()
	select {
	case <-done:
	case <-time.After(timeout + time.Minute):
		r.TB.Fatalf("start still running a minute after its %v timeout", timeout)
	}
	took := time.Since(begin)
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	return took
}
