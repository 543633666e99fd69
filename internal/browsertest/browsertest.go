// Package browsertest starts a real headless Chromium for tests through
// github.com/chromedp/chromedp: the gallery's pages and the live preview
// server are checked by what a browser builds from them, not by string
// matching on the HTML we wrote.
//
// Chromium comes from Debian (.ci/chromium.sh). Without it a test skips,
// or fails when the CI environment variable is set, as for the other real
// servers under internal/.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path returns the Chromium binary, skipping t (failing it under CI) when
// there is none.
func Path(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not found; CI runs .ci/chromium.sh to install it")
	}
	t.Skip("chromium not found (bash .ci/chromium.sh installs it)")
	return ""
}

// New starts a headless Chromium with its own empty profile and returns a
// tab's context, bounded by timeout so a page that never loads fails the
// test instead of hanging it. The browser is closed in t.Cleanup.
//
// The network features are off because this machine's network is closed:
// with them on, Chromium keeps opening connections that are refused.
func New(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	bin := Path(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
	)
	base, cancelTime := context.WithTimeout(context.Background(), timeout)
	alloc, cancelAlloc := chromedp.NewExecAllocator(base, opts...)
	ctx, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelTime()
	})
	// Start the browser now, so a Chromium that cannot start is reported
	// here and not as the first action's error.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	return ctx
}
