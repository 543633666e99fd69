package campaign

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed initdata
var initData embed.FS

// Init writes a small working campaign into dir (created if needed):
// campaign.yaml, recipients.csv, body.md, layout.html and logo.png. It
// refuses, before writing anything, when any of those files exists, so it
// never overwrites a user's work.
func Init(dir string) error {
	entries, err := fs.ReadDir(initData, "initdata")
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	for _, e := range entries {
		if _, err := os.Lstat(filepath.Join(dir, e.Name())); err == nil {
			return fmt.Errorf("init: %s already exists; refusing to overwrite", filepath.Join(dir, e.Name()))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("init: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	defer root.Close()
	for _, e := range entries {
		data, err := initData.ReadFile("initdata/" + e.Name())
		if err != nil {
			return fmt.Errorf("init: %w", err)
		}
		// O_EXCL: a file created since the check above is still not overwritten.
		f, err := root.OpenFile(e.Name(), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("init: %w", err)
		}
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("init: %w", err)
		}
	}
	return nil
}
