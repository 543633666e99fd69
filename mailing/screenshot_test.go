package mailing

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mailrun/mailrun/internal/browsertest"
)

// TestScreenshots writes the README's pictures of the gallery: the
// newsletter example's index and first message page, at desktop (1280
// px) and phone (390 px) width, as PNG files into the folder named by
// MAILRUN_SCREENSHOTS (make screenshots: docs/). Without it the test
// skips: the pictures change with the fonts of the machine, so they are
// made on purpose, looked at, and committed.
func TestScreenshots(t *testing.T) {
	out := os.Getenv("MAILRUN_SCREENSHOTS")
	if out == "" {
		t.Skip("MAILRUN_SCREENSHOTS=DIR writes the gallery's screenshots into DIR")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := Preview(context.Background(), mustLoad(t, "../examples/newsletter"), dir, 0, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	pages, _ := filepath.Glob(filepath.Join(dir, "0*.html"))
	if len(pages) == 0 {
		t.Fatal("no message page written")
	}
	ctx := browsertest.New(t, 2*time.Minute)
	for _, shot := range []struct {
		name, page string
		width      int64
		height     int64
		mobile     bool
	}{
		{"gallery-index-desktop", filepath.Join(dir, "index.html"), 1280, 800, false},
		{"gallery-index-phone", filepath.Join(dir, "index.html"), 390, 844, true},
		{"gallery-message-desktop", pages[0], 1280, 800, false},
		{"gallery-message-phone", pages[0], 390, 844, true},
	} {
		opts := []chromedp.EmulateViewportOption{chromedp.EmulatePortrait}
		if shot.mobile {
			opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
		}
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(shot.width, shot.height, opts...), chromedp.Navigate(fileURL(shot.page))); err != nil {
			t.Fatalf("%s: %v", shot.name, err)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("%s: %v", shot.name, err)
		}
		path := filepath.Join(out, shot.name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes", path, len(png))
	}
}
