package serve

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	// settle is how long the files must be quiet before a reload: an
	// editor's save is several events (write a temporary file, rename it,
	// change its mode), and one reload should follow them.
	settle = 150 * time.Millisecond
	// maxSettle bounds the wait for quiet after a change.
	maxSettle = time.Second
	// maxDirs bounds the folders watched; a campaign has a handful.
	maxDirs = 256
)

// watchDirs adds dir and its subfolders (hidden ones aside) to w, at most
// maxDirs in all. It returns how many it added; the error is dir's own.
func watchDirs(w *fsnotify.Watcher, dir string, have int) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil // a folder that went away or cannot be read
		}
		if !d.IsDir() {
			return nil
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if have+n >= maxDirs {
			return filepath.SkipAll
		}
		if err := w.Add(p); err != nil {
			if p == dir {
				return err
			}
			return nil
		}
		n++
		return nil
	})
	return n, err
}

// ignored names the files whose changes are not the campaign's: editors'
// swap, backup and temporary files, hidden files, the journal.
func ignored(name string) bool {
	base := filepath.Base(name)
	return strings.HasPrefix(base, ".") || strings.HasSuffix(base, "~") || base == "4913" ||
		slices.Contains([]string{".swp", ".swx", ".tmp", ".journal"}, filepath.Ext(base))
}

// watch follows the events of w until ctx ends: new folders are watched
// too, and once the campaign's files have been quiet for settle after a
// change, the campaign is loaded again (every open page then reloads).
func (s *Server) watch(ctx context.Context, w *fsnotify.Watcher, dirs int) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var changed []string
	var first time.Time // the first change not yet loaded
	for {
		select {
		case <-ctx.Done():
			return
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			fmt.Fprintf(s.log, "mailrun serve: watch: %v\n", err)
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod || ignored(ev.Name) {
				continue
			}
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					n, _ := watchDirs(w, ev.Name, dirs)
					dirs += n
				}
			}
			if rel, err := filepath.Rel(s.dir, ev.Name); err == nil && !slices.Contains(changed, rel) && len(changed) < 5 {
				changed = append(changed, rel)
			}
			// Wait for quiet, but never longer than maxSettle after the
			// first change: a file written every 100 ms must not hold
			// the reload back for ever.
			if first.IsZero() {
				first = time.Now()
			}
			timer.Reset(min(settle, max(maxSettle-time.Since(first), 0)))
		case <-timer.C:
			first = time.Time{}
			// A file already gone was an editor's or a tool's temporary.
			changed = slices.DeleteFunc(changed, func(rel string) bool {
				_, err := os.Lstat(filepath.Join(s.dir, rel))
				return err != nil
			})
			if len(changed) > 0 {
				fmt.Fprintf(s.log, "serve: %s changed; reloading\n", strings.Join(changed, ", "))
			} else {
				fmt.Fprintln(s.log, "serve: files removed; reloading")
			}
			changed = changed[:0]
			s.load()
		}
	}
}
