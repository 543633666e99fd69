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

func TestEmbedImages(t *testing.T) {
	r := newRenderer(t, baseConfig())
	in := `<img src="logo.png"><img alt='x' src='./logo.png'><IMG SRC=logo.png>` +
		`<img src="https://cdn.example/a.png"><img src="cid:x@y"><img src="data:image/png;base64,AA=="><!-- <img src="nope.png"> -->`
	out, used, err := r.embedImages(in, "t.html", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(used) != 1 {
		t.Fatalf("got %d embedded images, want 1 (the same file three times)", len(used))
	}
	cid := used[0].CID
	if got := strings.Count(out, `"cid:`+cid+`"`); got != 3 {
		t.Errorf("got %d rewritten references, want 3:\n%s", got, out)
	}
	for _, keep := range []string{`"https://cdn.example/a.png"`, `"cid:x@y"`, `"data:image/png;base64,AA=="`, `<!-- <img src="nope.png"> -->`} {
		if !strings.Contains(out, keep) {
			t.Errorf("%s was changed:\n%s", keep, out)
		}
	}
	if !strings.HasSuffix(cid, "@acme.example") {
		t.Errorf("Content-ID %q not in the From domain", cid)
	}
}
