//go:build !linux

package journal

import "os"

// dataSync is a full fsync where fdatasync is not in package syscall; the
// journal stays as durable, it only loses the speed-up.
func dataSync(f *os.File) func() error { return f.Sync }
