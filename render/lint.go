package render

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Warning is something in the layout or body template that mail clients
// drop or cannot follow: it does not stop a message, but the reader will
// not see what the author saw in a browser. Renderer.Warnings lists them
// once per template, whatever the recipients.
type Warning struct {
	// Field is "body" or "layout", as a FieldError's.
	Field string
	// File is the template file, Line its 1-based line (0 if unknown).
	File string
	Line int
	// Message says what clients do with it.
	Message string
}

// String formats w as "file:line: message".
func (w Warning) String() string {
	if w.Line > 0 {
		return w.File + ":" + strconv.Itoa(w.Line) + ": " + w.Message
	}
	return w.File + ": " + w.Message
}

// Warnings returns what the layout and the body hold that mail clients
// drop (<script>, <form>, <link rel=stylesheet>) or cannot resolve (a
// relative link, a relative image other than an <img src>, which alone
// is embedded), in the order of the templates and their lines. New finds
// them once, in the templates' source (a Markdown body converted to HTML
// first), so a link a CSV value makes is not seen.
func (r *Renderer) Warnings() []Warning { return r.warnings }

// lintBody adds the warnings of the body's source to r.warnings: a
// Markdown body is converted first, its template actions as text.
func (r *Renderer) lintBody(src string) {
	doc := src
	if r.markdown != nil {
		if h, _, err := r.parseMarkdown([]byte(src)); err == nil {
			doc = h
		}
	}
	r.warnings = append(r.warnings, lintHTML("body", r.bodyFile, src, doc)...)
}

// lintLayout adds the warnings of the layout's source to r.warnings.
func (r *Renderer) lintLayout(src string) {
	r.warnings = append(r.warnings, lintHTML("layout", r.cfg.Layout, src, src)...)
}

// cssURL finds the targets of url() in CSS.
var cssURL = regexp.MustCompile(`(?i)url\(\s*['"]?([^'")\s]+)`)

// lintHTML lists the warnings of doc, the HTML of template file (src is
// its source, where lines are looked up).
func lintHTML(field, file, src, doc string) []Warning {
	var ws []Warning
	seen := map[string]bool{}
	add := func(at int, needle, msg string) {
		line := 0
		if doc == src {
			line = 1 + strings.Count(src[:at], "\n")
		} else if i := strings.Index(strings.ToLower(src), strings.ToLower(needle)); i >= 0 {
			line = 1 + strings.Count(src[:i], "\n")
		}
		w := Warning{Field: field, File: file, Line: line, Message: msg}
		if !seen[w.String()] {
			seen[w.String()] = true
			ws = append(ws, w)
		}
	}
	image := func(at int, where, v string) {
		if relativeURL(v) {
			add(at, v, fmt.Sprintf("relative image %q in %s: only <img src> is embedded, and a mail client cannot load it from a relative URL", v, where))
		}
	}
	for i := 0; ; {
		t, ok := nextTag(doc, i)
		if !ok {
			break
		}
		i = t.end
		if t.closing {
			continue
		}
		switch t.name {
		case "script":
			add(t.start, "<script", "<script>: mail clients remove scripts (and some the whole message with them)")
		case "form":
			add(t.start, "<form", "<form>: most mail clients remove forms or disable them")
		case "link":
			if rel, _, _, _ := t.attr("rel"); strings.Contains(strings.ToLower(rel), "stylesheet") {
				add(t.start, "<link", "<link rel=stylesheet>: mail clients do not load external stylesheets; put the CSS in a <style>, which is inlined")
			}
		case "a", "area":
			if href, _, _, ok := t.attr("href"); ok && relativeURL(href) {
				add(t.start, href, fmt.Sprintf("relative link %q: a mail client has no page to resolve it against; use an absolute https:// URL", href))
			}
		case "style":
			end := strings.Index(strings.ToLower(doc[t.end:]), "</style")
			if end < 0 {
				end = len(doc) - t.end
			}
			for _, m := range cssURL.FindAllStringSubmatch(doc[t.end:t.end+end], -1) {
				image(t.start, "a <style> url()", m[1])
			}
		}
		for _, a := range []string{"background", "poster"} {
			if v, _, _, ok := t.attr(a); ok {
				image(t.start, "<"+t.name+" "+a+">", v)
			}
		}
		if v, _, _, ok := t.attr("src"); ok && t.name != "img" && t.name != "script" {
			image(t.start, "<"+t.name+" src>", v)
		}
		if v, _, _, ok := t.attr("srcset"); ok {
			for _, c := range strings.Split(v, ",") {
				if f := strings.Fields(c); len(f) > 0 {
					image(t.start, "<"+t.name+" srcset>", f[0])
				}
			}
		}
		if v, _, _, ok := t.attr("style"); ok {
			for _, m := range cssURL.FindAllStringSubmatch(v, -1) {
				image(t.start, "a style url()", m[1])
			}
		}
	}
	return ws
}

// relativeURL reports whether v is a relative URL with a path: no scheme,
// no host, not only a #fragment, and not a template action (its value is
// known per row only).
func relativeURL(v string) bool {
	v = strings.TrimSpace(v)
	if v == "" || strings.HasPrefix(v, "#") || strings.HasPrefix(v, "//") ||
		strings.Contains(v, "{{") || strings.Contains(strings.ToLower(v), "%7b%7b") {
		return false
	}
	u, err := url.Parse(v)
	return err == nil && u.Scheme == "" && u.Host == "" && u.Path != ""
}
