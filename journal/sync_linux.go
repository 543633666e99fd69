package journal

import (
	"errors"
	"os"
	"runtime"
	"syscall"
	"time"
)

// rawSyncMax is the average sync time up to which dataSync keeps its P
// (see dataSync): far above a local SSD's or this project's virtual
// disk's 250 µs, far below a spinning disk's or a network file system's.
const rawSyncMax = time.Millisecond

// dataSync returns a function that fdatasyncs f. A batch is written into
// the zeros that grow already wrote and fsynced, so the file's size and
// blocks do not change and fdatasync, which skips the inode's timestamps,
// makes it durable with less work than fsync (measured: about 250 µs
// instead of 350 µs per batch on the project's disk).
//
// A sync as short as a fast disk's goes through RawSyscall, which keeps
// the goroutine's P instead of handing it to another thread for the
// duration of the call: with thousands of syncs a second the hand-off and
// the wake-ups around it cost more CPU than the sync itself (measured on
// a 20,000-message send over 4 connections: 1.3 s less CPU of 10, 15%
// more messages per second). The P is then blocked for the sync, and a
// stop-the-world waits for it, which is cheap for a sync of 250 µs but
// not for a slow disk's: once the recent syncs average rawSyncMax or
// more, the ordinary syscall is used (the first slow sync still holds
// its P for its whole length; one of 5 s lifts the average to 625 ms).
// With a single P it is never used: the whole program would stand still
// for every sync, where the ordinary syscall lets it work meanwhile.
//
// Only the writer goroutine calls it, one call at a time, which lets the
// returned function reuse one callback and one error instead of
// allocating them per batch.
func dataSync(f *os.File) func() error {
	rc, err := f.SyscallConn()
	if err != nil {
		return f.Sync
	}
	var (
		serr error
		avg  time.Duration // moving average of the recent syncs
	)
	raw := runtime.GOMAXPROCS(0) > 1
	do := func(fd uintptr) {
		start := time.Now()
		for range 100 { // EINTR retries, bounded
			if raw && avg < rawSyncMax {
				serr = nil
				if _, _, e := syscall.RawSyscall(syscall.SYS_FDATASYNC, fd, 0, 0); e != 0 {
					serr = e
				}
			} else {
				serr = syscall.Fdatasync(int(fd))
			}
			if !errors.Is(serr, syscall.EINTR) {
				break
			}
		}
		avg += (time.Since(start) - avg) / 8
	}
	return func() error {
		serr = nil
		if err := rc.Control(do); err != nil {
			return err // the file is closed
		}
		if serr != nil {
			return os.NewSyscallError("fdatasync", serr)
		}
		return nil
	}
}
