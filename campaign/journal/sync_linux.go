package journal

import (
	"errors"
	"os"
	"syscall"
)

// dataSync returns a function that fdatasyncs f. A batch is written into
// the zeros that grow already wrote and fsynced, so the file's size and
// blocks do not change and fdatasync, which skips the inode's timestamps,
// makes it durable with less work than fsync (measured: about 250 µs
// instead of 350 µs per batch on the project's disk).
//
// Only the writer goroutine calls it, one call at a time, which lets the
// returned function reuse one callback and one error instead of
// allocating them per batch.
func dataSync(f *os.File) func() error {
	rc, err := f.SyscallConn()
	if err != nil {
		return f.Sync
	}
	var serr error
	do := func(fd uintptr) {
		for range 100 { // EINTR retries, bounded
			serr = syscall.Fdatasync(int(fd))
			if !errors.Is(serr, syscall.EINTR) {
				return
			}
		}
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
