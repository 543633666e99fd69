//go:build unix

package journal

import (
	"errors"
	"os"
	"syscall"
)

var errWouldBlock = syscall.EWOULDBLOCK

// lock takes an exclusive, non-blocking flock(2). The lock belongs to the
// open file description, so the kernel drops it when the process dies,
// however it dies, and a second Open in the same process is refused too.
func lock(f *os.File) error {
	var err error
	for range 100 { // EINTR retries, bounded
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
	return err
}

func unlock(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
