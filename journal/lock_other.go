//go:build !unix

package journal

import (
	"errors"
	"os"
)

var errWouldBlock = errors.New("would block")

// lock refuses: without a single-writer lock two runs could send the same
// messages, so the journal is unix-only until someone writes LockFileEx.
func lock(*os.File) error { return errors.ErrUnsupported }

func unlock(*os.File) error { return nil }
