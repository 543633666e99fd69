//go:build unix

package render

import (
	"maps"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A FIFO named as an attachment is refused, not opened (which would block
// the whole run).
func TestFIFOAttachmentRefused(t *testing.T) {
	cfg := baseConfig()
	dir := tempCampaign(t, map[string]string{"b.md": "hi"})
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.pdf"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	cfg.Dir, cfg.Markdown, cfg.Layout, cfg.HTML = dir, "b.md", "", ""
	cfg.Attachments = []string{"{{.file}}"}
	r := newRenderer(t, cfg)
	rc := zoe()
	rc.Fields = maps.Clone(rc.Fields)
	rc.Fields["file"] = "pipe.pdf"
	if _, err := r.Render(rc); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("got %v, want an attachment error naming a non-regular file", err)
	}
}
