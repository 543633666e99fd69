package serve

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/mailrun/mailrun/internal/browsertest"
)

// inFrames evaluates js in every message frame of the page, as Chromium
// shows them. The frames are sandboxed without scripts, so js runs in an
// isolated world of each child frame (Page.createIsolatedWorld), which
// shares the frame's DOM but not its scripts, as a browser extension's
// would. Each call is bounded, so a page reloading under it costs one
// short retry.
func inFrames[T any](ctx context.Context, js string) []T {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	out, err := chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) ([]T, error) {
		tree, err := cdp.Call(ctx, t, cdppage.GetFrameTree, cdp.Empty{})
		if err != nil {
			return nil, err
		}
		var out []T
		for _, ch := range tree.FrameTree.ChildFrames {
			world, err := cdp.Call(ctx, t, cdppage.CreateIsolatedWorld, cdppage.CreateIsolatedWorldParams{FrameID: ch.Frame.ID, WorldName: "mailrun-test"})
			if err != nil {
				continue
			}
			v, err := chromedp.Evaluate[T](js, func(p *runtime.EvaluateParams) { p.ContextID = world.ExecutionContextID })(ctx, t)
			if err == nil {
				out = append(out, v)
			}
		}
		return out, nil
	})
	if err != nil {
		return nil
	}
	return out
}

// frameText is the text of the message frames, as Chromium lays it out.
func frameText(ctx context.Context) string {
	return strings.Join(inFrames[string](ctx, "document.body.innerText"), "\n")
}

// problemsText is the text of the page's problems list; "" when none.
func problemsText(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("problems") || {}).textContent || ""`))
	if err != nil {
		return ""
	}
	return s
}

// TestServeChromium opens a row's page in a real headless Chromium and
// edits the campaign under it, as the issue asks: the page for row 2 shows
// the body; an edit to body.md shows in the open page within 3 s (the page
// reloads itself: the test never navigates again); a broken template
// shows its file:line in the page, and fixing it brings the message back.
func TestServeChromium(t *testing.T) {
	ctx := browsertest.New(t, 2*time.Minute)
	dir, base := start(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"row/2"), chromedp.WaitVisible(chromedp.CSS("iframe"))); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "row 2's body in the frame", func() bool {
		return strings.Contains(frameText(ctx), "Hello Zoë!")
	})
	// The logo, an inline part, loads from the server into the frame.
	eventually(t, 3*time.Second, "the logo in the frame", func() bool {
		w := inFrames[float64](ctx, "document.images.length ? document.images[0].naturalWidth : 0")
		return len(w) == 1 && w[0] > 0
	})

	// The phone width is the page's CSS, no script: the message sees a
	// 375 px wide window, as its media queries will on a phone.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`label[for="width-phone"]`))); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "the frame at phone width", func() bool {
		w := inFrames[float64](ctx, "window.innerWidth")
		return len(w) == 1 && w[0] == 375
	})

	start := time.Now()
	editFile(t, dir, "body.md", func(s string) string { return strings.Replace(s, "Hello", "Good morning", 1) })
	eventually(t, 3*time.Second, "the edit in the open page", func() bool {
		return strings.Contains(frameText(ctx), "Good morning Zoë!")
	})
	t.Logf("the edit showed %s after the write", time.Since(start).Round(time.Millisecond))

	editFile(t, dir, "body.md", func(s string) string { return strings.Replace(s, "{{.first_name}}!", "{{.first_name!", 1) })
	var problems string
	eventually(t, 3*time.Second, "the broken template's file:line in the page", func() bool {
		problems = problemsText(ctx)
		return strings.Contains(problems, "body.md:3:")
	})
	if !strings.Contains(problems, "bad character") {
		t.Errorf("problems: got %q, want the template's error", problems)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("iframe").length`)); err != nil || n != 0 {
		t.Errorf("got %d message frames (%v), want none while the template is broken", n, err)
	}

	editFile(t, dir, "body.md", func(s string) string { return strings.Replace(s, "{{.first_name!", "{{.first_name}}!", 1) })
	eventually(t, 3*time.Second, "the message back after the fix", func() bool {
		return strings.Contains(frameText(ctx), "Good morning Zoë!") && problemsText(ctx) == ""
	})
}
