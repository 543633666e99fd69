package sender

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Dir writes messages as .eml files into one folder, for previews.
type Dir struct {
	// Path is the folder; it must exist.
	Path string
}

// Write stores msg as the file name inside d.Path atomically: a reader
// sees the old file or the whole new one, never a part, even after a
// crash. name must be a plain file name (no separator, not "." or "..");
// the write goes through an os.Root, so it cannot leave the folder.
func (d Dir) Write(name string, msg []byte) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return fmt.Errorf("write eml: %q is not a plain file name", name)
	}
	root, err := os.OpenRoot(d.Path)
	if err != nil {
		return fmt.Errorf("write eml: %w", err)
	}
	defer root.Close()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := "." + name + ".tmp-" + hex.EncodeToString(rnd[:])
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("write eml %s: %w", name, err)
	}
	_, werr := f.Write(msg)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = root.Remove(tmp)
		return fmt.Errorf("write eml %s: %w", name, err)
	}
	if err := root.Rename(tmp, name); err != nil {
		_ = root.Remove(tmp)
		return fmt.Errorf("write eml %s: %w", name, err)
	}
	// Persist the rename itself; not every file system allows syncing a
	// directory, so a failure here is not reported.
	if dir, err := root.Open("."); err == nil {
		_ = dir.Sync()
		_ = dir.Close()
	}
	return nil
}
