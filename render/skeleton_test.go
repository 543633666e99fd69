package render

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// renderFields renders a Markdown renderer's body for fields.
func renderFields(t testing.TB, r *Renderer, fields map[string]string) (htmlOut, text string) {
	t.Helper()
	c, err := contentOf(r, fields)
	if err != nil {
		t.Fatalf("render %v: %v", fields, err)
	}
	return c.html, c.text
}

// Recipients whose templates take the same branches share one goldmark
// run; each still gets its own values and its own branch.
func TestSkeletonShared(t *testing.T) {
	r := markdownRenderer(t, "# Hello {{.v}}\n\n{{if eq .plan \"pro\"}}Thanks for **Pro**.{{else}}Try *Pro*.{{end}}\n\n{{if .nick}}Alias: {{.nick}}{{end}}\n")
	for i := range 20 {
		plan, nick := "free", ""
		if i%2 == 0 {
			plan = "pro"
		}
		if i%5 == 0 {
			nick = fmt.Sprintf("n%d", i)
		}
		v := fmt.Sprintf("Reader %d", i)
		out, text := renderFields(t, r, map[string]string{"v": v, "plan": plan, "nick": "  " + nick})
		if !strings.Contains(out, "<h1>Hello "+v+"</h1>") {
			t.Errorf("row %d: heading lacks %q:\n%s", i, v, out)
		}
		wantBranch := "Try <em>Pro</em>."
		if plan == "pro" {
			wantBranch = "Thanks for <strong>Pro</strong>."
		}
		if !strings.Contains(out, wantBranch) {
			t.Errorf("row %d (plan %s): want %q in\n%s", i, plan, wantBranch, out)
		}
		if got := strings.Contains(out, "Alias:"); got != (nick != "") {
			t.Errorf("row %d: nick %q (blank counts as empty), alias shown %v:\n%s", i, nick, got, out)
		}
		wantText := "Hello " + v + "\n" + strings.Repeat("=", len("Hello "+v))
		if !strings.HasPrefix(text, wantText+"\n") {
			t.Errorf("row %d: text should start with %q:\n%s", i, wantText, text)
		}
	}
	// pro/free times nick/no nick: four skeletons for twenty recipients.
	if got := len(r.skel.pages); got != 4 {
		t.Errorf("%d skeletons cached, want 4", got)
	}
}

// Values land with the escaping of the place they are in, never as
// Markdown: no backslash escapes in code, link targets, autolinks or the
// author's own HTML, and no markup from the value anywhere.
func TestSkeletonContexts(t *testing.T) {
	body := "Code: `{{.v}}`\n\n" +
		"[Profile](https://acme.example/u/{{.id}}?x=1 \"For {{.v}}\")\n\n" +
		"See https://acme.example/p/{{.id}} now.\n\n" +
		"<a href=\"mailto:{{.email}}\" title=\"{{.v}}\">write</a>\n\n" +
		"![{{.v}}](https://cdn.example/{{.id}}.png)\n\n" +
		"| who | id |\n|---|---|\n| {{.v}} | {{.id}} |\n"
	r := markdownRenderer(t, body)
	fields := map[string]string{"v": `Ann & "Bo" <i>x</i> *y* a\b | c`, "id": "ann lee-7", "email": "ann.lee@example.org"}
	out, text := renderFields(t, r, fields)
	for _, want := range []string{
		`<code>Ann &amp; &quot;Bo&quot; &lt;i&gt;x&lt;/i&gt; *y* a\b | c</code>`,
		`<a href="https://acme.example/u/ann%20lee-7?x=1" title="For Ann &amp; &quot;Bo&quot; &lt;i&gt;x&lt;/i&gt; *y* a\b | c">Profile</a>`,
		`<a href="https://acme.example/p/ann%20lee-7">https://acme.example/p/ann lee-7</a>`,
		`<a href="mailto:ann.lee@example.org" title="Ann &amp; &quot;Bo&quot; &lt;i&gt;x&lt;/i&gt; *y* a\b | c">write</a>`,
		`<img src="https://cdn.example/ann%20lee-7.png" alt="Ann &amp; &quot;Bo&quot; &lt;i&gt;x&lt;/i&gt; *y* a\b | c">`,
		`<td>Ann &amp; &quot;Bo&quot; &lt;i&gt;x&lt;/i&gt; *y* a\b | c</td>`,
		`<td>ann lee-7</td>`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("HTML lacks %s\n%s", want, out)
		}
	}
	for _, bad := range []string{"<i>", "<em>", `\.`, `\-`, "&amp;amp;", "&#39;"} {
		if strings.Contains(out, bad) {
			t.Errorf("HTML has %q:\n%s", bad, out)
		}
	}
	for _, want := range []string{
		"Code: " + fields["v"],
		"Profile <https://acme.example/u/ann lee-7?x=1>",
		"https://acme.example/p/ann lee-7 now.",
		fields["v"] + " | ann lee-7",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, r.skel.prefix) || strings.Contains(out, r.skel.prefix) {
		t.Errorf("a placeholder was left in the output:\n%s\n%s", out, text)
	}
}

// printf can cut or re-encode a value's marker; such a recipient is
// rendered the old way and still reads right.
func TestSkeletonPrintf(t *testing.T) {
	r := markdownRenderer(t, "Short {{printf \"%.3s\" .v}}, hex {{printf \"%x\" .v}}, padded [{{printf \"%8s\" .v}}], whole {{printf \"%s\" .v}}.\n")
	out, text := renderFields(t, r, map[string]string{"v": "Martin"})
	want := "Short Mar, hex 4d617274696e, padded [  Martin], whole Martin."
	if !strings.Contains(out, "<p>"+want+"</p>") {
		t.Errorf("want <p>%s</p> in\n%s", want, out)
	}
	if strings.TrimSpace(text) != want {
		t.Errorf("text %q, want %q", text, want)
	}
	// A printf that keeps the marker whole still uses the cache.
	r = markdownRenderer(t, "Hi {{printf \"%s!\" .v}}\n")
	for _, v := range []string{"Ann", "Bo"} {
		if out, _ := renderFields(t, r, map[string]string{"v": v}); !strings.Contains(out, "<p>Hi "+v+"!</p>") {
			t.Errorf("printf %%s of %q: got\n%s", v, out)
		}
	}
	if got := len(r.skel.pages); got != 1 {
		t.Errorf("%d skeletons cached, want 1", got)
	}
}

// A template that makes a skeleton per recipient (it prints a length)
// keeps at most maxSkeletons of them and renders the rest all the same.
func TestSkeletonCacheBound(t *testing.T) {
	r := markdownRenderer(t, "{{.v}} has {{len .v}} bytes\n")
	for i := range maxSkeletons + 20 {
		v := strings.Repeat("a", i+1)
		out, _ := renderFields(t, r, map[string]string{"v": v})
		if want := fmt.Sprintf("<p>%s has %d bytes</p>", v, i+1); !strings.Contains(out, want) {
			t.Fatalf("got\n%s\nwant %s", out, want)
		}
	}
	if got := len(r.skel.pages); got != maxSkeletons {
		t.Errorf("%d skeletons cached, want the bound %d", got, maxSkeletons)
	}
}

// Heading underlines are as wide as the heading with the recipient's
// value in it (李 takes two columns), blank values included, at both
// levels and in a quote.
func TestSkeletonHeadings(t *testing.T) {
	r := markdownRenderer(t, "# Hello {{.v}}\n\nSub {{.v}}\n---\n\n> ## Quoted {{.v}}\n\n### Deep {{.v}}\n")
	for _, tc := range []struct{ v, want string }{
		{"Zoë", "Hello Zoë\n=========\n\nSub Zoë\n-------\n\n> Quoted Zoë\n> ----------\n\nDeep Zoë\n"},
		{"  ", "Hello\n=====\n\nSub\n---\n\n> Quoted\n> ------\n\nDeep\n"},
		{"李雷 Ünïcødé", "Hello 李雷 Ünïcødé\n==================\n\nSub 李雷 Ünïcødé\n----------------\n\n> Quoted 李雷 Ünïcødé\n> -------------------\n\nDeep 李雷 Ünïcødé\n"},
	} {
		_, text := renderFields(t, r, map[string]string{"v": tc.v})
		if text != tc.want {
			t.Errorf("value %q: text\n%s\nwant\n%s", tc.v, text, tc.want)
		}
	}
}

// A value lands inert wherever the author put it in raw HTML: it cannot
// end a quoted or unquoted attribute, add an attribute, name a tag, supply
// a dangerous URL scheme, or run inside <script>, <style> or style="".
func TestSkeletonValueCannotEscapeHTMLContext(t *testing.T) {
	for _, tc := range []struct{ name, body, v, bad, want string }{
		{"single-quoted href", "<a href='https://x.example/{{.v}}'>a</a>\n", `'onclick='alert(1)`, "onclick='", ""},
		{"single-quoted title", "<a title='{{.v}}'>a</a>\n", `' onclick='alert(1)`, " onclick='", ""},
		{"unquoted value", "<table><tr><td width={{.v}}>a</td></tr></table>\n", "1 onmouseover=alert(1)", " onmouseover=", ""},
		{"attribute name", "<div {{.v}}>a</div>\n", "onclick=alert(1)", "onclick=", ""},
		{"tag name", "<{{.v}}>\n\nrest\n", "script", "<script", "&lt;script>"},
		{"raw href scheme", "<a href=\"{{.v}}\">a</a>\n", "javascript:alert(1)", `href="javascript:`, ""},
		{"link scheme", "[a]({{.v}})\n", " JavaScript:alert(1)", `href="JavaScript:`, ""},
		{"split scheme", "<a href=\"java{{.v}}\">a</a>\n", "script:alert(1)", `href="javascript:`, ""},
		{"ref scheme", "[a][r]\n\n[r]: {{.v}}\n", "vbscript:x", `href="vbscript:`, ""},
		{"https stays", "<a href=\"{{.v}}\">a</a>\n", "https://ok.example/p?a=1", "", `href="https://ok.example/p?a=1"`},
		{"mailto stays", "[a]({{.v}})\n", "mailto:ann@example.org", "", `href="mailto:ann@example.org"`},
		{"script", "<script>var n = '{{.v}}';</script>\n", "';alert(1);'", "';alert(1)", ""},
		{"style element", "<style>p{color:{{.v}}}</style>\n", "red}body{background:url(https://t.example/x)", "url(https://t", ""},
		{"style attribute", "<p style=\"color:{{.v}}\">a</p>\n", "red;background:url(https://t.example/x)", ";background:url(", ""},
		{"event attribute", "<a onclick=\"go('{{.v}}')\">a</a>\n", "');alert(1);('", ");alert(1)", ""},
	} {
		r := markdownRenderer(t, tc.body)
		// A harmless recipient first, so the attack reuses the skeleton's
		// slots, found once with another value in them.
		renderFields(t, r, map[string]string{"v": "plain"})
		out, _ := renderFields(t, r, map[string]string{"v": tc.v})
		if tc.bad != "" && strings.Contains(out, tc.bad) {
			t.Errorf("%s: value %q made %q:\n%s", tc.name, tc.v, tc.bad, out)
		}
		if tc.want != "" && !strings.Contains(out, tc.want) {
			t.Errorf("%s: value %q: want %q in\n%s", tc.name, tc.v, tc.want, out)
		}
	}
}

// Builtins that format a value through fmt (print, urlquery, ...) would
// see its marker; such templates are checked and rendered the old way, so
// no marker, prefix or hex reaches the message.
func TestSkeletonPrintBuiltins(t *testing.T) {
	r := markdownRenderer(t, "A {{len (print .v)}} B {{urlquery .v}} C {{if eq (print .v) \"ab\"}}yes{{end}} D {{slice (print .v) 0 1}}.\n")
	_, text := renderFields(t, r, map[string]string{"v": "ab"})
	if want := "A 2 B ab C yes D a.\n"; text != want {
		t.Errorf("text %q, want %q", text, want)
	}
}

// A value holding the marker prefix (it is random, but a test can know it)
// is still printed as it is and does not disturb the heading underlines.
func TestSkeletonValueWithPrefix(t *testing.T) {
	r := markdownRenderer(t, "# A {{.v}}\n\nB {{.w}}\n")
	v, w := r.skel.prefix+"u-Z", r.skel.prefix+"w0Z"
	_, text := renderFields(t, r, map[string]string{"v": v, "w": w})
	want := "A " + v + "\n" + strings.Repeat("=", len("A "+v)) + "\n\nB " + w + "\n"
	if text != want {
		t.Errorf("text\n%q\nwant\n%q", text, want)
	}
}

// FuzzSkeletonRawHTML puts one value into the author's raw HTML in every
// context fillHTML tells apart; the tags and attribute names must be the
// same as for a plain word, and no script scheme or quote may appear.
func FuzzSkeletonRawHTML(f *testing.F) {
	for _, s := range []string{"' onclick='x", "\" onclick=\"x", "a b=c", "javascript:x", " JaVaScRiPt:x", "&#106;avascript:x",
		"</script><img src=x>", "}body{x:url(y)}", "`${x}`", "-->", "<!--", "script", "/", "a\tb\nc", "\u00a0x\u00a0"} {
		f.Add(s)
	}
	r := markdownRenderer(f, "<div class=\"a\" {{.v}} title={{.v}}>\n<a href='https://x.example/{{.v}}' title='{{.v}}'>t {{.v}}</a>\n"+
		"<a href=\"{{.v}}\" onclick=\"go('{{.v}}')\">l</a><!-- {{.v}} -->\n<script>var n = '{{.v}}';</script>\n"+
		"<style>p{color:{{.v}}}</style><p style=\"color:{{.v}}\">s</p>\n</div>\n\n<{{.v}}>\n")
	attrName := regexp.MustCompile(`([^\s"'>/=]+)(\s*=\s*("[^"]*"|'[^']*'|[^\s>]*))?`)
	shape := func(t testing.TB, v string) (string, string) {
		out, _ := renderFields(t, r, map[string]string{"v": v})
		var sig []string
		for i := 0; ; {
			tg, ok := nextTag(out, i)
			if !ok {
				break
			}
			i = tg.end
			sig = append(sig, tg.name)
			for _, m := range attrName.FindAllStringSubmatch(tg.attrs, -1) {
				// The value names one attribute itself; only a handler
				// with a value counts by name.
				if strings.HasPrefix(strings.ToLower(m[1]), "on") && m[2] != "" {
					sig = append(sig, "@"+m[1])
				} else {
					sig = append(sig, "@")
				}
			}
		}
		return strings.Join(sig, " "), out
	}
	jsURL := regexp.MustCompile(`(?i)(href|src)\s*=\s*["']?[\s\x00-\x1f]*javascript:`)
	want, _ := shape(f, "x")
	blank, _ := shape(f, "")
	f.Fuzz(func(t *testing.T, v string) {
		if !utf8.ValidString(v) {
			return
		}
		got, out := shape(t, v)
		exp := want
		if strings.TrimFunc(v, unicode.IsSpace) == "" {
			exp = blank
		}
		if got != exp {
			t.Fatalf("value %q: shape\n%s\nwant\n%s\n%s", v, got, exp, out)
		}
		if jsURL.MatchString(out) {
			t.Fatalf("value %q gave a javascript: URL:\n%s", v, out)
		}
		if i, j := strings.Index(out, "<script>"), strings.Index(out, "</script>"); i < 0 || j < i || strings.Count(out[i:j], "'") != 2 {
			t.Fatalf("value %q: the script's string was broken:\n%s", v, out)
		}
	})
}

// The slots a skeleton keeps give every later recipient the output a
// fresh scan of the HTML would: values of other lengths in every place,
// several in one attribute.
func TestSkeletonSlotsReused(t *testing.T) {
	r := markdownRenderer(t, "Hi {{.a}} `{{.b}}`\n\n<a href=\"https://x.example/{{.a}}/{{.b}}\" title='{{.b}}' data-x={{.a}}>{{.b}}</a>\n\n<style>p{color:{{.a}}}</style>\n\n<{{.b}}>\n\n<a href=\"{{.a}}{{.b}}\">z</a>\n")
	for _, tc := range []struct {
		f    map[string]string
		want string // in the output
	}{
		{map[string]string{"a": "x", "b": "y"}, `<a href="xy">z</a>`},
		{map[string]string{"a": "a much longer value & more", "b": `'quoted" <b>`}, "<p>Hi a much longer value &amp; more <code>'quoted&quot; &lt;b&gt;</code></p>"},
		// The second value's scheme check sees the first value before it.
		{map[string]string{"a": "http", "b": "s://ok.example/"}, `<a href="https://ok.example/">z</a>`},
		{map[string]string{"a": "java", "b": "script:alert(1)"}, `<a href="javascript%3Aalert(1)">z</a>`},
		{map[string]string{"a": "Zoë 李雷", "b": "script"}, "&lt;script>"},
	} {
		f := tc.f
		out, _ := renderFields(t, r, f)
		if !strings.Contains(out, tc.want) {
			t.Errorf("values %v: want %s in\n%s", f, tc.want, out)
		}
		src, err := execText(r.markdown, r.mdData(f, false))
		if err != nil {
			t.Fatal(err)
		}
		skel, vals, ok := r.skel.skeletonize(src)
		if !ok {
			t.Fatal("skeletonize failed")
		}
		page := r.skel.get(skel)
		if page == nil {
			t.Fatal("skeleton not cached")
		}
		if want := r.skel.fillHTML(page.html, vals); out != want {
			t.Errorf("values %v: kept slots gave\n%s\nwant (fresh scan)\n%s", f, out, want)
		}
	}
	if got := len(r.skel.pages); got != 1 {
		t.Errorf("%d skeletons, want 1", got)
	}
}

// A value inside a URL the author started is one component: it cannot add
// a query, a parameter, a fragment or a mailto header; a value that is
// the whole URL keeps its query.
func TestSkeletonURLComponent(t *testing.T) {
	r := markdownRenderer(t, "[mail](mailto:{{.user}}@acme.example) [page](https://acme.example/u/{{.id}}?x=1) [own]({{.url}})\n")
	out, _ := renderFields(t, r, map[string]string{"user": "ann?cc=evil@evil.example", "id": "7&admin=1#top", "url": "https://ok.example/p?a=1&b=2"})
	for _, want := range []string{
		`href="mailto:ann%3Fcc=evil@evil.example@acme.example"`,
		`href="https://acme.example/u/7%26admin=1%23top?x=1"`,
		`href="https://ok.example/p?a=1&amp;b=2"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("want %s in\n%s", want, out)
		}
	}
}
