package mailing

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"golang.org/x/net/html"

	"github.com/mailrun/mailrun/internal/browsertest"
)

// galleryLinks parses an HTML file and returns its links and iframes.
func galleryLinks(t *testing.T, path string) (hrefs []string, frames []*html.Node) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		switch n.Data {
		case "a":
			hrefs = append(hrefs, attr(n, "href"))
		case "iframe":
			frames = append(frames, n)
		}
	}
	return hrefs, frames
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// resolve checks that a relative link names an existing file in dir.
func resolve(t *testing.T, dir, href string) string {
	t.Helper()
	u, err := url.Parse(href)
	if err != nil || u.Scheme != "" || u.Host != "" {
		t.Fatalf("link %q: want a relative path (%v)", href, err)
	}
	p := filepath.Join(dir, filepath.FromSlash(u.Path))
	if _, err := os.Stat(p); err != nil {
		t.Errorf("link %q: %v", href, err)
	}
	return p
}

// TestGalleryExamples previews every example and walks its gallery: every
// message is linked from the index, every link resolves, no cid: is left,
// and the message frame is sandboxed without scripts.
func TestGalleryExamples(t *testing.T) {
	paths, _ := filepath.Glob("../examples/*/campaign.yaml")
	for _, path := range paths {
		t.Run(filepath.Base(filepath.Dir(path)), func(t *testing.T) {
			dir := t.TempDir()
			if _, err := Preview(context.Background(), mustLoad(t, path), dir, 0, &bytes.Buffer{}); err != nil {
				t.Fatal(err)
			}
			emls, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
			hrefs, _ := galleryLinks(t, filepath.Join(dir, "index.html"))
			if len(hrefs) != len(emls) || len(emls) == 0 {
				t.Fatalf("got %d links in the index, want one per .eml (%d)", len(hrefs), len(emls))
			}
			for _, h := range hrefs {
				checkPage(t, dir, resolve(t, dir, h))
			}
		})
	}
}

func checkPage(t *testing.T, dir, page string) {
	t.Helper()
	data, _ := os.ReadFile(page)
	if bytes.Contains(data, []byte("cid:")) {
		t.Errorf("%s: got a cid: reference, want every inline part resolved", filepath.Base(page))
	}
	hrefs, frames := galleryLinks(t, page)
	for _, h := range hrefs {
		resolve(t, dir, h)
	}
	for _, f := range frames {
		sb, ok := "", false
		for _, a := range f.Attr {
			if a.Key == "sandbox" {
				sb, ok = a.Val, true
			}
		}
		if !ok || strings.TrimSpace(sb) != "allow-same-origin" {
			t.Errorf("%s: got iframe sandbox=%q (present %v), want a sandbox without scripts", filepath.Base(page), sb, ok)
		}
		// The images the message references resolve beside the page.
		doc, err := html.Parse(strings.NewReader(attr(f, "srcdoc")))
		if err != nil {
			t.Fatal(err)
		}
		for n := range doc.Descendants() {
			if n.Type == html.ElementNode && n.Data == "img" {
				resolve(t, dir, attr(n, "src"))
			}
		}
	}
}

// hostileCampaign is a campaign whose subject, names and attachment try to
// inject into the gallery, with a bad row among good ones.
func hostileCampaign(t *testing.T) string {
	return writeFiles(t, map[string]string{
		"campaign.yaml": `from: "Acme <news@acme.example>"
subject: "<script>alert(1)</script> {{.first_name}}"
recipients: {file: recipients.csv, name: "{{.first_name}}"}
body:
  html: body.html
attachments: ["<b>x.txt"]
`,
		"body.html":      "<p>Hi {{.first_name}}</p><script>document.documentElement.dataset.ran='yes';parent.document.title='pwned'</script>",
		"<b>x.txt":       "attached\n",
		"recipients.csv": "email,first_name\nann@example.org,Ann <i>\nbad,B\nbob@example.org,\"Bob\"\"'\"\n",
	})
}

func TestGalleryEscapes(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	rep, err := Preview(context.Background(), mustLoad(t, hostileCampaign(t)), dir, 0, &out)
	if err != nil || rep.Written != 2 {
		t.Fatalf("got %+v, %v\n%s", rep, err, out.String())
	}
	index, _ := os.ReadFile(filepath.Join(dir, "index.html"))
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt; Ann &lt;i&gt;", "&lt;b&gt;x.txt", `id="row-3"`,
		"recipients.csv:3: email: invalid address"} {
		if !bytes.Contains(index, []byte(want)) {
			t.Errorf("index: want %q in\n%s", want, index)
		}
	}
	pages, _ := filepath.Glob(filepath.Join(dir, "*.html"))
	for _, p := range pages {
		data, _ := os.ReadFile(p)
		if bytes.Contains(bytes.ToLower(data), []byte("<script")) || bytes.Contains(data, []byte("<b>")) {
			t.Errorf("%s: got raw markup from the message:\n%s", filepath.Base(p), data)
		}
	}
}

// fileURL is the file:// URL of path.
func fileURL(path string) string {
	abs, _ := filepath.Abs(path)
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
}

// indexView is what a browser shows of a gallery's index.html.
type indexView struct {
	Text  string   `json:"text"`
	Pages []string `json:"pages"` // the links to message pages
}

// readIndex opens a gallery's index.html and reads its text and links.
func readIndex(ctx context.Context, path string) (indexView, error) {
	if err := chromedp.Do(ctx, chromedp.Navigate(fileURL(path))); err != nil {
		return indexView{}, err
	}
	return chromedp.Run(ctx, chromedp.Evaluate[indexView](`({
		text: document.body.innerText,
		pages: Array.from(document.querySelectorAll('a[href$=".html"]'), a => a.href),
	})`))
}

// frameView is what a browser shows in the message frame of a gallery
// page.
type frameView struct {
	Text   string `json:"text"`
	Images []struct {
		Src      string `json:"src"`
		Width    int    `json:"width"`
		Complete bool   `json:"complete"`
	} `json:"images"`
	Ran   bool   `json:"ran"`   // a script of the message ran in the frame
	Title string `json:"title"` // the page's title, which the message's script tries to change
}

// readFrame opens a gallery page and reads its message frame. The frame
// is sandboxed without allow-same-origin (and scripts are off), so the
// page's own JavaScript cannot see into it. The script is evaluated in an
// isolated world of the frame (Page.createIsolatedWorld), which shares
// its DOM but not its scripts, as a browser extension would. Chromium
// runs a sandboxed frame in a process of its own, a target of type
// "iframe" reached with chromedp.WithTargetID; a frame in the page's
// process is a child in the page's frame tree. Navigate returns after the
// page's load event, which waits for the frame's, images included.
func readFrame(ctx context.Context, u string) (frameView, error) {
	if err := chromedp.Do(ctx, chromedp.Navigate(u)); err != nil {
		return frameView{}, err
	}
	title, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.title`))
	if err != nil {
		return frameView{}, err
	}
	tree, err := chromedp.Run(ctx, frameTree)
	if err != nil {
		return frameView{}, err
	}
	infos, err := chromedp.Targets(ctx)
	if err != nil {
		return frameView{}, err
	}
	var remote []*target.Info
	for _, info := range infos {
		if info.Type == "iframe" && info.ParentFrameID == tree.Frame.ID {
			remote = append(remote, info)
		}
	}
	var v frameView
	switch n := len(tree.ChildFrames) + len(remote); {
	case n != 1:
		return frameView{}, fmt.Errorf("got %d frames in the page, want 1", n)
	case len(remote) == 1:
		fctx, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(remote[0].TargetID), chromedp.WithDetachOnCancel())
		defer cancel()
		v, err = chromedp.Run(fctx, func(ctx context.Context, t *chromedp.Target) (frameView, error) {
			tree, err := frameTree(ctx, t)
			if err != nil {
				return frameView{}, err
			}
			return evalFrame(ctx, t, tree.Frame.ID)
		})
	default:
		v, err = chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) (frameView, error) {
			return evalFrame(ctx, t, tree.ChildFrames[0].Frame.ID)
		})
	}
	v.Title = title
	return v, err
}

func frameTree(ctx context.Context, t *chromedp.Target) (*page.FrameTree, error) {
	r, err := cdp.Call(ctx, t, page.GetFrameTree, cdp.Empty{})
	return r.FrameTree, err
}

// evalFrame reads frameView in an isolated world of frame id.
func evalFrame(ctx context.Context, t *chromedp.Target, id cdp.FrameID) (frameView, error) {
	world, err := cdp.Call(ctx, t, page.CreateIsolatedWorld, page.CreateIsolatedWorldParams{FrameID: id, WorldName: "mailrun-test"})
	if err != nil {
		return frameView{}, err
	}
	return chromedp.Evaluate[frameView](`({
		text: document.body ? document.body.innerText : "",
		images: Array.from(document.images, i => ({src: i.getAttribute("src"), width: i.naturalWidth, complete: i.complete})),
		ran: document.documentElement.dataset.ran === "yes",
	})`, func(p *runtime.EvaluateParams) { p.ContextID = world.ExecutionContextID })(ctx, t)
}

// frameProblems lists what is wrong with a message frame: an image not
// loaded, the name missing from its text, a script that ran.
func frameProblems(v frameView, name string) []string {
	var p []string
	for _, img := range v.Images {
		if !img.Complete || img.Width == 0 {
			p = append(p, fmt.Sprintf("image %s did not load (naturalWidth %d)", img.Src, img.Width))
		}
	}
	if !strings.Contains(v.Text, name) {
		p = append(p, fmt.Sprintf("%q is not in the frame's text %q", name, v.Text))
	}
	if v.Ran || v.Title == "pwned" {
		p = append(p, "a script of the message ran")
	}
	return p
}

// csvRecipients reads an example's list: each row's address and the
// name its message greets (first_name, or the first word of name).
func csvRecipients(t *testing.T, path string) (emails, names []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("%s: %v (%d rows)", path, err, len(rows))
	}
	email, first, name := slices.Index(rows[0], "email"), slices.Index(rows[0], "first_name"), slices.Index(rows[0], "name")
	for _, r := range rows[1:] {
		emails = append(emails, r[email])
		switch {
		case first >= 0:
			names = append(names, r[first])
		default:
			names = append(names, strings.Fields(r[name])[0])
		}
	}
	return emails, names
}

// TestGalleryBrowser opens the galleries of the newsletter and the
// notification in a real headless Chromium: the index lists every
// recipient of the list, and on each message page every image in the
// message frame has loaded, the recipient's name is in the frame's text,
// and no script ran. Then it proves each check can fail: with an image
// part deleted, and with a frame that allows scripts.
func TestGalleryBrowser(t *testing.T) {
	ctx := browsertest.New(t, 2*time.Minute)
	for _, example := range []string{"newsletter", "notification"} {
		t.Run(example, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := Preview(context.Background(), mustLoad(t, "../examples/"+example), dir, 0, &bytes.Buffer{}); err != nil {
				t.Fatal(err)
			}
			index, err := readIndex(ctx, filepath.Join(dir, "index.html"))
			if err != nil {
				t.Fatal(err)
			}
			emails, names := csvRecipients(t, "../examples/"+example+"/recipients.csv")
			for i, email := range emails {
				if !strings.Contains(index.Text, email) {
					t.Errorf("index: %s is not listed in %q", email, index.Text)
					continue
				}
				j := slices.IndexFunc(index.Pages, func(u string) bool { return strings.Contains(u, url.PathEscape(email)) || strings.Contains(u, email) })
				if j < 0 {
					t.Errorf("index: no page linked for %s among %q", email, index.Pages)
					continue
				}
				v, err := readFrame(ctx, index.Pages[j])
				if err != nil {
					t.Fatalf("%s: %v", index.Pages[j], err)
				}
				if example == "newsletter" && len(v.Images) == 0 {
					t.Errorf("%s: got no image, want the logo", email)
				}
				for _, p := range frameProblems(v, names[i]) {
					t.Errorf("%s: %s", email, p)
				}
			}
			if example != "newsletter" {
				return
			}
			// The image check fails when an image is missing.
			parts, _ := filepath.Glob(filepath.Join(dir, "parts", "*"))
			if len(parts) == 0 {
				t.Fatal("no image parts written")
			}
			for _, p := range parts {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			}
			v, err := readFrame(ctx, index.Pages[0])
			if err != nil {
				t.Fatal(err)
			}
			if p := frameProblems(v, names[0]); len(p) != 1 || !strings.Contains(p[0], "did not load") {
				t.Errorf("without its image part: got problems %q, want the image reported", p)
			}
		})
	}
	t.Run("script", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := Preview(context.Background(), mustLoad(t, hostileCampaign(t)), dir, 0, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		pagePath := filepath.Join(dir, "00002-ann@example.org.html")
		v, err := readFrame(ctx, fileURL(pagePath))
		if err != nil {
			t.Fatal(err)
		}
		if p := frameProblems(v, "Ann <i>"); len(p) != 0 {
			t.Errorf("got %q, want the name shown and the script not run", p)
		}
		// The script check fails when the sandbox allows scripts (and
		// the page's policy too).
		data, err := os.ReadFile(pagePath)
		if err != nil {
			t.Fatal(err)
		}
		data = bytes.Replace(data, []byte(`<iframe sandbox="allow-same-origin"`), []byte(`<iframe sandbox="allow-same-origin allow-scripts"`), 1)
		data = bytes.Replace(data, []byte("script-src 'none'"), []byte("script-src 'unsafe-inline'"), 1)
		open := filepath.Join(dir, "open.html")
		if err := os.WriteFile(open, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if v, err = readFrame(ctx, fileURL(open)); err != nil {
			t.Fatal(err)
		}
		if !v.Ran {
			t.Errorf("with scripts allowed: got ran=false, want the script seen running")
		}
	})
}
