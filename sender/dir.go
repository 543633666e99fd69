package sender

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Dir writes messages as .eml files into one folder, for previews.
type Dir struct {
	// Path is the folder; it must exist.
	Path string
	// Sync makes every write durable (file and folder fsynced). Previews
	// leave it off: they can be made again, and an fsync per message would
	// cost more than rendering it.
	Sync bool
}

// Write stores msg as the file name inside d.Path atomically: a reader
// sees the old file or the whole new one, never a part (a temporary file
// renamed over it). name must be a plain file name (no separator, not "."
// or ".."), so the file cannot leave the folder; the temporary file is
// created exclusively and the rename replaces a symlink rather than
// following it.
func (d Dir) Write(name string, msg []byte) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return fmt.Errorf("write eml: %q is not a plain file name", name)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(d.Path, "."+name+".tmp-"+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("write eml %s: %w", name, err)
	}
	_, werr := f.Write(msg)
	var serr error
	if d.Sync {
		serr = f.Sync()
	}
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write eml %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(d.Path, name)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write eml %s: %w", name, err)
	}
	if d.Sync {
		// Persist the rename itself; not every file system allows syncing
		// a directory, so a failure here is not reported.
		if dir, err := os.Open(d.Path); err == nil {
			_ = dir.Sync()
			_ = dir.Close()
		}
	}
	return nil
}
