package render

import (
	"regexp"
	"strings"
	"testing"
)

var styledRed = regexp.MustCompile(`style="[^"]*red`)

// styledLayout reads only .Body and .Vars, so it is run once, and its
// <style> selects elements of the body.
const styledLayout = `<!DOCTYPE html>
<html><head><title>{{.Vars.title}}</title>
<style>
td, th { border: 1px solid #d0d4dc; padding: 6px 10px }
p.note { color: #6b7280 }
@media (max-width: 600px) { td { padding: 4px } }
</style></head>
<body>{{.Body}}</body></html>
`

const styledBody = "Hi {{.v}}\n\n| Plan | Who |\n|------|-----|\n| Pro | {{.v}} |\n\n<p class=\"note\" title=\"{{.v}}\">n {{.v}}</p>\n"

// styledRenderer is a Renderer of files (name, source pairs) with cfg
// filled in.
func styledRenderer(t testing.TB, cfg Config, files ...string) *Renderer {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i+1 < len(files); i += 2 {
		if err := writeFile(dir, files[i], files[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Dir, cfg.From, cfg.Subject = dir, "news@acme.example", "s"
	cfg.Vars = map[string]any{"title": "T"}
	return newRenderer(t, cfg)
}

// hostile is a value that would end a <style> and start a script, were it
// read as HTML.
const hostile = `</style><script>alert(1)</script><style>td{color:red}`

// checkInert fails unless out shows v as text only.
func checkInert(t *testing.T, out string) {
	t.Helper()
	if strings.Contains(out, "<script") || styledRed.MatchString(out) || strings.Count(out, "<style") > 1 {
		t.Errorf("the value became markup or CSS:\n%s", out)
	}
	if !strings.Contains(out, "&lt;/style&gt;&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the value is not shown escaped:\n%s", out)
	}
}

// An element the layout's <style> selects carries the style inline, in
// the body too; @media stays in the head; the values of every recipient
// go into the page inlined once per skeleton, never through the inliner.
func TestInlineLayoutStyle(t *testing.T) {
	r := styledRenderer(t, Config{Markdown: "b.md", Layout: "l.html"}, "b.md", styledBody, "l.html", styledLayout)
	if r.layoutSplit == nil || !r.inline {
		t.Fatalf("layout split %v, inline %v: want both", r.layoutSplit != nil, r.inline)
	}
	for _, v := range []string{"Zoë", hostile, "Ann"} {
		out, _ := renderFields(t, r, map[string]string{"v": v})
		for _, want := range []string{
			`<td style="border:1px solid #d0d4dc;padding:6px 10px">Pro</td>`,
			`<th style="border:1px solid #d0d4dc;padding:6px 10px">Plan</th>`,
			`style="color:#6b7280">n `,
			"@media (max-width: 600px)",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("value %q: want %s in\n%s", v, want, out)
			}
		}
		if strings.Contains(out, "p.note") {
			t.Errorf("value %q: an inlined rule stayed in the head:\n%s", v, out)
		}
		if v == hostile {
			checkInert(t, out)
		}
	}
	if len(r.skel.pages) != 1 {
		t.Fatalf("%d skeletons, want 1", len(r.skel.pages))
	}
	for _, p := range r.skel.pages {
		if !p.wholeOK {
			t.Error("the page was not inlined once per skeleton")
		}
	}
}

// Pages that cannot be inlined before the values are in (an HTML body, a
// layout that reads a column) are inlined per message: the values,
// escaped by html/template, stay text.
func TestInlinePerMessage(t *testing.T) {
	htmlBody := `<p class="note" title="{{.v}}">Hi {{.v}}</p><table><tr><td>{{.v}}</td></tr></table>`
	colLayout := strings.Replace(styledLayout, "{{.Vars.title}}", "{{.v}}", 1)
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"html body", Config{HTML: "b.html", Layout: "l.html"}},
		{"html body alone", Config{HTML: "s.html"}},
		{"layout reads a column", Config{Markdown: "b.md", Layout: "c.html"}},
	} {
		r := styledRenderer(t, tc.cfg, "b.md", styledBody, "l.html", styledLayout, "c.html", colLayout,
			"b.html", htmlBody, "s.html", styledLayout[:strings.Index(styledLayout, "<body>")]+"<body>"+htmlBody+"</body></html>")
		out, _ := renderFields(t, r, map[string]string{"v": hostile})
		if !strings.Contains(out, `style="border:1px solid #d0d4dc;padding:6px 10px"`) {
			t.Errorf("%s: td not styled:\n%s", tc.name, out)
		}
		checkInert(t, out)
	}
}

// inline_css: false leaves the page as the templates make it.
func TestInlineOff(t *testing.T) {
	off := false
	r := styledRenderer(t, Config{Markdown: "b.md", Layout: "l.html", InlineCSS: &off}, "b.md", styledBody, "l.html", styledLayout)
	out, _ := renderFields(t, r, map[string]string{"v": "Zoë"})
	if !strings.Contains(out, "p.note { color: #6b7280 }") || strings.Contains(out, `style="`) {
		t.Errorf("inlined although off:\n%s", out)
	}
}

// The newsletter example's table cells carry their borders and padding
// inline, where mail clients keep them.
func TestInlineNewsletterExample(t *testing.T) {
	for _, on := range []bool{true, false} {
		r := newRenderer(t, Config{Dir: "../examples/newsletter", From: "news@acme.example", Subject: "s",
			Markdown: "body.md", Layout: "layout.html", Vars: map[string]any{"issue": 42, "month": "November"}, InlineCSS: &on})
		c, err := contentOf(r, map[string]string{"first_name": "Zoë", "plan": "pro"})
		if err != nil {
			t.Fatal(err)
		}
		cell := `<td style="border:1px solid #d0d4dc;padding:6px 12px;text-align:center">50</td>`
		if got := strings.Contains(c.html, cell); got != on {
			t.Errorf("inline %v: styled cell in the HTML: got %v, want %v\n%s", on, got, on, c.html)
		}
	}
}

// TestInlineSentBytes reads the HTML part back out of the message as
// sent (MIME, quoted-printable): an element the layout's <style> targets
// carries the style in its style attribute there; with inline_css: false
// the same message keeps the <style> rule and no element has a style.
func TestInlineSentBytes(t *testing.T) {
	for _, on := range []bool{true, false} {
		r := styledRenderer(t, Config{Markdown: "b.md", Layout: "l.html", InlineCSS: &on,
			Now: fixedNow, MessageID: func() string { return "t.1@acme.example" }},
			"b.md", styledBody, "l.html", styledLayout)
		m, err := r.Render(Recipient{Row: 2, Email: "zoe@example.org", Fields: map[string]string{"v": "Zoë"}})
		if err != nil {
			t.Fatal(err)
		}
		_, root := parseMessage(t, m.Data)
		h := root.find("text/html")
		if h == nil {
			t.Fatalf("no text/html part in %s", root.shape())
		}
		html := string(h.body)
		styled := strings.Contains(html, `<td style="border:1px solid #d0d4dc;padding:6px 10px">Pro</td>`) &&
			strings.Contains(html, `<p class="note" title="Zoë" style="color:#6b7280">`)
		kept := strings.Contains(html, "p.note { color: #6b7280 }") && !strings.Contains(html, `style="`)
		if styled != on || kept == on {
			t.Errorf("inline_css %v: got styled %v, rule kept %v in the sent HTML:\n%s", on, styled, kept, html)
		}
	}
}
