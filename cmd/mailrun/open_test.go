package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// fakeOpener writes an executable xdg-open into a new folder that records
// its arguments in a file and exits with code, and returns the folder and
// the record's path.
func fakeOpener(t *testing.T, code string) (dir, record string) {
	t.Helper()
	dir = t.TempDir()
	record = filepath.Join(dir, "record")
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > '" + record + "'\nexit " + code + "\n"
	if err := os.WriteFile(filepath.Join(dir, "xdg-open"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, record
}

// TestPreviewOpen: preview --open hands DIR/index.html, as an absolute
// path, to the desktop's launcher (a recording xdg-open first on PATH);
// without a launcher, without a display or with a launcher that fails, the
// preview is still written and mailrun only warns.
func TestPreviewOpen(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the launcher is xdg-open on Linux only")
	}
	fake, record := fakeOpener(t, "0")
	failing, _ := fakeOpener(t, "3")
	empty := t.TempDir()
	for _, c := range []struct {
		name, path, display, warn string
		opened                    bool
	}{
		{"opens", fake, ":0", "", true},
		{"wayland", fake, "", "", true},
		{"no launcher", empty, ":0", "no browser to open here (no xdg-open or no display)", false},
		{"no display", fake, "", "no browser to open here", false},
		{"launcher fails", failing, ":0", "exit status 3", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			os.Remove(record)
			t.Setenv("PATH", c.path+string(os.PathListSeparator)+os.Getenv("PATH"))
			if c.path == empty {
				t.Setenv("PATH", empty) // and nothing else: no real xdg-open either
			}
			t.Setenv("DISPLAY", c.display)
			t.Setenv("WAYLAND_DISPLAY", "")
			if c.name == "wayland" {
				t.Setenv("WAYLAND_DISPLAY", "wayland-0")
			}
			out := filepath.Join(t.TempDir(), "out")
			r := mailrun(t, nil, "preview", "../../examples/notification", "-o", out, "--open")
			r.want(t, exitOK, "preview --open")
			index := filepath.Join(out, "index.html")
			if _, err := os.Stat(index); err != nil {
				t.Fatalf("no gallery written: %v", err)
			}
			got, err := os.ReadFile(record)
			switch {
			case c.opened && err != nil:
				t.Fatalf("the launcher was not run: %v\n%s", err, r.stderr)
			case c.opened && string(got) != index+"\n":
				t.Errorf("the launcher got %q, want %q", got, index+"\n")
			case !c.opened && c.path == fake && err == nil:
				t.Errorf("the launcher was run with %q, want it not run", got)
			}
			if c.warn == "" && r.stderr != "" || !strings.Contains(r.stderr, c.warn) {
				t.Errorf("stderr %q, want %q", r.stderr, c.warn)
			}
		})
	}
}
