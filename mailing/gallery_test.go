package mailing

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
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
		if !ok || strings.Contains(sb, "allow-scripts") || strings.Contains(sb, "allow-same-origin") {
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
		"body.html":      "<p>Hi {{.first_name}}</p><script>parent.document.title='pwned'</script>",
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

// TestGalleryChromium opens the gallery in a real headless Chromium
// (.ci/chromium.sh installs it) and reads the DOM it built: the rows and
// the subject are there. It skips without Chromium unless CI is set.
func TestGalleryChromium(t *testing.T) {
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium not found; CI runs .ci/chromium.sh to install it")
		}
		t.Skip("chromium not found (bash .ci/chromium.sh installs it)")
	}
	dir := t.TempDir()
	if _, err := Preview(context.Background(), mustLoad(t, hostileCampaign(t)), dir, 0, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	dom := dumpDOM(t, bin, filepath.Join(dir, "index.html"))
	for _, want := range []string{`id="row-2"`, `id="row-3"`, `id="row-4"`, "&lt;script&gt;alert(1)&lt;/script&gt; Ann"} {
		if !strings.Contains(dom, want) {
			t.Errorf("index DOM: want %q in\n%s", want, dom)
		}
	}
	dom = dumpDOM(t, bin, filepath.Join(dir, "00002-ann@example.org.html"))
	if !strings.Contains(dom, "&lt;script&gt;alert(1)&lt;/script&gt; Ann") || strings.Contains(dom, "<title>pwned") {
		t.Errorf("page DOM: want the subject escaped and the message's script not run:\n%s", dom)
	}
}

func dumpDOM(t *testing.T, bin, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path)}
	cmd := exec.CommandContext(ctx, bin, "--headless=new", "--no-sandbox", "--disable-gpu",
		"--no-first-run", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--disable-default-apps", "--user-data-dir="+t.TempDir(),
		"--dump-dom", u.String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, stderr.String())
	}
	return string(out)
}
