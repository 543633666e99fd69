package sender

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDirWrite(t *testing.T) {
	dir := t.TempDir()
	d := Dir{Path: dir}
	if err := d.Write("00001-ann@example.org.eml", testMsg); err != nil {
		t.Fatal(err)
	}
	// Overwrite: the new content replaces the old one whole.
	second := append([]byte("X-Second: yes\r\n"), testMsg...)
	if err := d.Write("00001-ann@example.org.eml", second); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "00001-ann@example.org.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, second) {
		t.Errorf("got %q, want %q", got, second)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("got files %v, want only the .eml (no temp files left)", names)
	}
}

func TestDirWriteRefusesPaths(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "out")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A symlink inside the folder pointing out of it must not be followed.
	if err := os.Symlink(filepath.Join(parent, "escaped.eml"), filepath.Join(dir, "link.eml")); err != nil {
		t.Fatal(err)
	}
	d := Dir{Path: dir}
	for _, name := range []string{"", ".", "..", "../x.eml", "a/b.eml", `a\b.eml`, "/etc/x.eml", "a\x00.eml"} {
		if err := d.Write(name, testMsg); err == nil {
			t.Errorf("Write(%q) succeeded, want an error", name)
		}
	}
	// Renaming over the link replaces the link itself, never its target.
	if err := d.Write("link.eml", testMsg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(parent, "escaped.eml")); !os.IsNotExist(err) {
		t.Errorf("write escaped the folder: %v", err)
	}
	if err := (Dir{Path: filepath.Join(parent, "missing")}).Write("a.eml", testMsg); err == nil || !strings.Contains(err.Error(), "write eml") {
		t.Errorf("got %v, want an error for a missing folder", err)
	}
}
