package render

import (
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// renderValue renders tmpl (a Markdown body) with .v set to value and
// returns the HTML and the plain-text alternative.
func renderValue(t testing.TB, r *Renderer, value string) (htmlOut, text string) {
	t.Helper()
	c, err := contentOf(r, map[string]string{"v": value})
	if err != nil {
		t.Fatalf("render %q: %v", value, err)
	}
	return c.html, c.text
}

func markdownRenderer(t testing.TB, body string) *Renderer {
	t.Helper()
	dir := t.TempDir()
	if err := writeFile(dir, "b.md", body); err != nil {
		t.Fatal(err)
	}
	// The skeleton tests read fillHTML's own escaping, <style> included;
	// inlining is inline_test.go's.
	off := false
	return newRenderer(t, Config{Dir: dir, From: "news@acme.example", Subject: "s", Markdown: "b.md", InlineCSS: &off})
}

func TestMarkdownValuesAreLiteral(t *testing.T) {
	r := markdownRenderer(t, "Hello {{.v}}!\n\n{{.v}}\n\n<div>{{.v}}</div>\n\n*{{.v}}*\n")
	for _, v := range []string{
		"[x](javascript:alert(1))",
		"<script>alert(1)</script>",
		"**bold** _em_ ~~del~~",
		"![img](http://evil.example/x.png)",
		"<img src=x onerror=alert(1)>",
		"http://evil.example/ www.evil.example evil@evil.example",
		"# heading\n\n- list\n1. one\n> quote",
		"    indented code",
		"| a | b |\n|---|---|",
		"`code` \\*esc\\* &amp; &lt;b&gt; &#60;",
		"line one  \nline two",
		`" onmouseover="alert(1)`,
		"<!-- comment -->",
		"[ref]: http://evil.example",
		"a\\",
		"*",
	} {
		t.Run(v, func(t *testing.T) {
			out, text := renderValue(t, r, v)
			for _, bad := range []string{"<script", "<img", "<strong", "<del", "<h1", "<li", "<blockquote",
				"<pre", "<code", "<table", "<br", "<a", "href", "<!--", "onmouseover=\""} {
				if strings.Contains(out, bad) {
					t.Errorf("value %q produced %q in:\n%s", v, bad, out)
				}
			}
			if got := strings.Count(out, "<em>"); got != 1 {
				t.Errorf("got %d <em>, want only the author's one:\n%s", got, out)
			}
			want := strings.Join(strings.Fields(v), " ")
			m := helloRE.FindStringSubmatch(out)
			if m == nil || strings.Contains(m[1], "<") || strings.Join(strings.Fields(html.UnescapeString(m[1])), " ") != want {
				t.Errorf("value not rendered literally: want <p>Hello %s!</p> in\n%s", html.EscapeString(want), out)
			}
			if !strings.Contains(strings.Join(strings.Fields(text), " "), "Hello "+want+"!") {
				t.Errorf("plain text lacks the literal value %q:\n%s", want, text)
			}
		})
	}
}

var helloRE = regexp.MustCompile(`(?s)<p>Hello (.*?)!</p>`)

func TestMarkdownValueInLink(t *testing.T) {
	r := markdownRenderer(t, "[Your page](https://acme.example/u/{{.v}}?x=1)\n")
	out, text := renderValue(t, r, "ann.o'neil-7")
	if !strings.Contains(out, `<a href="https://acme.example/u/ann.o'neil-7?x=1">Your page</a>`) {
		t.Errorf("link destination: got\n%s", out)
	}
	if !strings.Contains(text, "Your page <https://acme.example/u/ann.o'neil-7?x=1>") {
		t.Errorf("text: got\n%s", text)
	}
}

func writeFile(dir, name, body string) error {
	return os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
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

// The text part keeps GFM strikethrough as ~~text~~ (a price cut must not
// read "10 EUR 8 EUR"), and a heading's underline is as wide as the
// heading on a fixed-width screen: a wide character such as 李 takes two
// columns, a combining mark none. Both ways of rendering a recipient are
// covered: the shared skeleton and the fallback for a template whose
// printf cut a value (see markdownBody).
func TestTextPartStrikeAndWidth(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"skeleton", "# Hello {{.v}}!\n\nSub {{.v}}\n---\n\nPrice ~~10 EUR~~ 8 EUR, ~{{.v}}~ and ~~**bold** [link](https://acme.example/)~~.\n"},
		{"fallback", "# Hello {{printf \"%.9s\" .v}}!\n\nSub {{.v}}\n---\n\nPrice ~~10 EUR~~ 8 EUR, ~{{.v}}~ and ~~**bold** [link](https://acme.example/)~~.\n"},
	} {
		r := markdownRenderer(t, tc.body)
		for _, c := range []struct{ v, want string }{
			{"Zoe", "Hello Zoe!\n==========\n\nSub Zoe\n-------\n\n"},
			{"李雷", "Hello 李雷!\n===========\n\nSub 李雷\n--------\n\n"},
			{"Zoe\u0308", "Hello Zoe\u0308!\n==========\n\nSub Zoe\u0308\n-------\n\n"},
			{"🎉 x", "Hello 🎉 x!\n===========\n\nSub 🎉 x\n--------\n\n"},
		} {
			want := c.want + "Price ~~10 EUR~~ 8 EUR, ~~" + c.v + "~~ and ~~bold link <https://acme.example/>~~.\n"
			htmlOut, text := renderFields(t, r, map[string]string{"v": c.v})
			if text != want {
				t.Errorf("%s, value %q: got text\n%s\nwant\n%s", tc.name, c.v, text, want)
			}
			if !strings.Contains(htmlOut, "<del>10 EUR</del> 8 EUR") {
				t.Errorf("%s, value %q: HTML lacks the struck price:\n%s", tc.name, c.v, htmlOut)
			}
		}
	}
}

func TestDisplayWidth(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want int
	}{
		{"", 0}, {"Hello Zoe!", 10}, {"Hello 李雷", 10}, {"Hello 李雷!", 11}, {"Zoë Ünïcødé", 11},
		{"e\u0301", 1}, {"🎉", 2}, {"ｆｕｌｌ", 8}, {"👩‍💻 dev", 6},
	} {
		if got := displayWidth(tc.s); got != tc.want {
			t.Errorf("displayWidth(%q): got %d, want %d", tc.s, got, tc.want)
		}
	}
}
