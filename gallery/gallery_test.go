package gallery

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImageType(t *testing.T) {
	for ctype, want := range map[string]string{
		"image/png": ".png", "image/jpeg; name=a.jpg": ".jpg", "IMAGE/GIF": ".gif",
		"image/svg+xml": "", "text/html": "", "image/x+xml": "", "": "",
	} {
		ext, ok := ImageType(ctype)
		if ext != want || ok != (want != "") {
			t.Errorf("ImageType(%q) = %q, %v; want %q", ctype, ext, ok, want)
		}
	}
}

// TestPartNamesNeverFromTheMessage: an inline part named evil.html and
// typed text/html, or an SVG, is written with .bin, so a static server
// never serves it as a page or an image that runs script; a PNG keeps
// .png.
func TestPartNamesNeverFromTheMessage(t *testing.T) {
	msg := strings.ReplaceAll(`From: a@example.org
To: b@example.org
Subject: parts
MIME-Version: 1.0
Content-Type: multipart/related; boundary="B"

--B
Content-Type: text/html; charset=utf-8

<p><img src="cid:h"><img src="cid:s"><img src="cid:p"></p>
--B
Content-Type: text/html; name="evil.html"
Content-ID: <h>
Content-Disposition: inline; filename="evil.html"

<script>alert(1)</script>
--B
Content-Type: image/svg+xml; name="x.svg"
Content-ID: <s>

<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>
--B
Content-Type: image/png; name="logo.html"
Content-ID: <p>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--B--
`, "\n", "\r\n")
	dir := t.TempDir()
	g, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Abort()
	if _, err := g.Page(2, "00002-b@example.org.eml", []byte(msg)); err != nil {
		t.Fatal(err)
	}
	files, err := os.ReadDir(filepath.Join(dir, PartsDir))
	if err != nil {
		t.Fatal(err)
	}
	exts := map[string]int{}
	for _, f := range files {
		exts[filepath.Ext(f.Name())]++
	}
	if exts[".bin"] != 2 || exts[".png"] != 1 || len(files) != 3 {
		t.Errorf("parts written as %v, want two .bin and one .png", exts)
	}
}
