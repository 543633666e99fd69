package render

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A CSV value naming the src of an image must not embed a file of the
// campaign folder that is not an image (the recipient list, a key).
func TestImageFromCSVMustBeAnImage(t *testing.T) {
	cfg := baseConfig()
	png, err := os.ReadFile(filepath.Join(cfg.Dir, "logo.png"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dir = tempCampaign(t, map[string]string{
		"b.html":         `<p>hi</p><img src="{{.photo}}">`,
		"recipients.csv": "email,photo\nzoe@example.org,recipients.csv\n",
		"a/logo.png":     string(png),
		"b/logo.png":     string(png),
	})
	cfg.Markdown, cfg.Layout, cfg.HTML, cfg.Attachments = "", "", "b.html", nil
	r := newRenderer(t, cfg)
	rc := zoe()
	rc.Fields = maps.Clone(rc.Fields)
	rc.Fields["photo"] = "recipients.csv"
	_, err = r.Render(rc)
	var fe *FieldError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "not an image") {
		t.Fatalf("got %v, want a body error saying the file is not an image", err)
	}

	// The same image bytes under the same name from two folders make one
	// part: two parts must never share a Content-ID.
	cfg.Dir = tempCampaign(t, map[string]string{
		"b.html":     `<img src="a/logo.png"><img src="b/logo.png">`,
		"a/logo.png": string(png),
		"b/logo.png": string(png),
	})
	m, err := newRenderer(t, cfg).Render(zoe())
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(m.Data, []byte("Content-Id:")) + bytes.Count(m.Data, []byte("Content-ID:")); n != 1 {
		t.Errorf("got %d image parts, want 1 for identical images", n)
	}
}

// CSV values in the unsubscribe templates are URL-escaped: they cannot add
// a parameter, a path or a mailto header to the one-click link.
func TestUnsubscribeValuesEscaped(t *testing.T) {
	cfg := baseConfig()
	cfg.Unsubscribe = Unsubscribe{URL: "https://acme.example/u/{{.id}}", Mailto: "unsub@acme.example?subject={{.id}}"}
	r := newRenderer(t, cfg)
	rc := zoe()
	rc.Fields = maps.Clone(rc.Fields)
	rc.Fields["id"] = "../admin?all=1&cc=evil@example.net x"
	m, err := r.Render(rc)
	if err != nil {
		t.Fatal(err)
	}
	want := "<https://acme.example/u/..%2Fadmin%3Fall%3D1%26cc%3Devil%40example.net%20x>"
	if !bytes.Contains(m.Data, []byte(want)) {
		t.Errorf("List-Unsubscribe does not hold %s:\n%s", want, m.Data[:bytes.Index(m.Data, []byte("\r\n\r\n"))])
	}
	if bytes.Contains(m.Data, []byte("&cc=")) {
		t.Error("a CSV value added a mailto parameter")
	}
}

// Tabs and runs of blanks in a header value collapse to one space: go-mail
// folds only at spaces, and no header line may pass 998 octets or be
// blank after folding.
func TestHeaderBlanksCollapse(t *testing.T) {
	cfg := baseConfig()
	cfg.Subject = strings.Repeat("abcdefgh\t", 120) + "end" + strings.Repeat(" ", 1000) + "b"
	m, err := newRenderer(t, cfg).Render(zoe())
	if err != nil {
		t.Fatal(err)
	}
	head := string(m.Data[:bytes.Index(m.Data, []byte("\r\n\r\n"))])
	for _, l := range strings.Split(head, "\r\n") {
		if len(l) > 998 {
			t.Errorf("a header line of %d octets", len(l))
		}
		if strings.TrimSpace(l) == "" {
			t.Error("a header line of blanks only")
		}
	}
	if strings.Contains(m.Subject, "\t") || strings.Contains(m.Subject, "  ") {
		t.Errorf("subject keeps tabs or double blanks: %q", m.Subject[:40])
	}
}

// The author's HTML blocks in Markdown reach the text part as text.
func TestMarkdownHTMLBlockInText(t *testing.T) {
	r := markdownRenderer(t, "Hello {{.v}}\n\n<div class=\"cta\">\n<a href=\"https://acme.example/go\">Open the dashboard</a>\n</div>\n\nBye\n")
	_, text := renderValue(t, r, "Zoë")
	for _, want := range []string{"Hello Zoë", "Open the dashboard", "https://acme.example/go", "Bye"} {
		if !strings.Contains(text, want) {
			t.Errorf("text part lacks %q:\n%s", want, text)
		}
	}
}
