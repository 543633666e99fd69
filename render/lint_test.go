package render

import (
	"strings"
	"testing"
)

// Warnings lists, once per template and with its line, what mail clients
// drop or cannot resolve; embedded images, absolute links, fragments and
// links a value makes are fine.
func TestWarnings(t *testing.T) {
	layout := "<html><head>\n<link rel=\"stylesheet\" href=\"https://cdn.example/x.css\">\n" +
		"<style>td { background: url(bg.png) }</style></head>\n<body>{{.Body}}\n<script>x()</script>\n" +
		"<a href=\"https://acme.example/\">ok</a> <a href=\"#top\">top</a> <a href=\"{{.Vars.home}}\">v</a> <a href=\"mailto:a@b.example\">m</a>\n" +
		"<table background=\"paper.jpg\"><tr><td><img src=\"logo.png\" srcset=\"logo2.png 2x\"></td></tr></table>\n</body></html>\n"
	body := "Hi {{.first_name}}, see [the page](page.html) and [ours](https://acme.example/{{.id}}).\n\n" +
		"<form action=\"https://acme.example/vote\"><input name=v></form>\n\n[again](page.html)\n"
	r := styledRenderer(t, Config{Markdown: "b.md", Layout: "l.html"}, "b.md", body, "l.html", layout, "logo.png", "x")
	var got []string
	for _, w := range r.Warnings() {
		got = append(got, w.Field+" "+w.String())
	}
	want := []string{
		`body b.md:1: relative link "page.html": a mail client has no page to resolve it against; use an absolute https:// URL`,
		`body b.md:3: <form>: most mail clients remove forms or disable them`,
		`layout l.html:2: <link rel=stylesheet>: mail clients do not load external stylesheets; put the CSS in a <style>, which is inlined`,
		`layout l.html:3: relative image "bg.png" in a <style> url(): only <img src> is embedded, and a mail client cannot load it from a relative URL`,
		`layout l.html:5: <script>: mail clients remove scripts (and some the whole message with them)`,
		`layout l.html:7: relative image "paper.jpg" in <table background>: only <img src> is embedded, and a mail client cannot load it from a relative URL`,
		`layout l.html:7: relative image "logo2.png" in <img srcset>: only <img src> is embedded, and a mail client cannot load it from a relative URL`,
	}
	if g, w := strings.Join(got, "\n"), strings.Join(want, "\n"); g != w {
		t.Errorf("got\n%s\nwant\n%s", g, w)
	}
}

// An HTML body is read for the same things as a Markdown body and a
// layout: a script, a form, an external stylesheet, a relative link; an
// embedded image, an absolute link and a fragment are fine.
func TestWarningsHTMLBody(t *testing.T) {
	body := "<html><head><link href=\"style.css\" rel=\"stylesheet\"></head><body>\n" +
		"<p>Hi {{.first_name}} <img src=\"logo.png\"> <a href=\"https://acme.example/\">site</a> <a href=\"#x\">x</a></p>\n" +
		"<a href=\"../terms.html\">terms</a>\n<form method=post><button>go</button></form>\n<SCRIPT src=\"https://cdn.example/t.js\"></SCRIPT>\n</body></html>\n"
	r := styledRenderer(t, Config{HTML: "b.html"}, "b.html", body, "logo.png", "x")
	var got []string
	for _, w := range r.Warnings() {
		got = append(got, w.Field+" "+w.String())
	}
	want := []string{
		`body b.html:1: <link rel=stylesheet>: mail clients do not load external stylesheets; put the CSS in a <style>, which is inlined`,
		`body b.html:3: relative link "../terms.html": a mail client has no page to resolve it against; use an absolute https:// URL`,
		`body b.html:4: <form>: most mail clients remove forms or disable them`,
		`body b.html:5: <script>: mail clients remove scripts (and some the whole message with them)`,
	}
	if g, w := strings.Join(got, "\n"), strings.Join(want, "\n"); g != w {
		t.Errorf("got\n%s\nwant\n%s", g, w)
	}
}
