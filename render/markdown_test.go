package render

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// renderValue renders tmpl (a Markdown body) with .v set to value and
// returns the HTML and the plain-text alternative.
func renderValue(t testing.TB, r *Renderer, value string) (htmlOut, text string) {
	t.Helper()
	c, err := r.content(map[string]string{"v": value}, r.data(map[string]string{"v": value}, nil))
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
	return newRenderer(t, Config{Dir: dir, From: "news@acme.example", Subject: "s", Markdown: "b.md"})
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

func TestHTMLTemplateEscapes(t *testing.T) {
	cfg := baseConfig()
	cfg.Markdown, cfg.Layout, cfg.HTML, cfg.Attachments = "", "", "body.html", nil
	r := newRenderer(t, cfg)
	rc := zoe()
	rc.Fields["first_name"] = `<script>alert("x")</script>`
	rc.Fields["id"] = `"><script>`
	c, err := r.content(rc.Fields, r.data(rc.Fields, nil))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(c.html, "<script") {
		t.Errorf("html/template let <script> through:\n%s", c.html)
	}
	if !strings.Contains(c.html, "&lt;script&gt;") {
		t.Errorf("escaped value missing:\n%s", c.html)
	}
	if !strings.Contains(c.text, `Invoice for <script>alert("x")</script>`) {
		t.Errorf("derived text should show the literal value:\n%s", c.text)
	}
}

func TestHTMLToText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"<p>a</p><p>b</p>", "a\n\nb\n"},
		{"a<br>b<br/>c", "a\nb\nc\n"},
		{`<a href="https://x.example/">site</a>.`, "site <https://x.example/>.\n"},
		{`<a href="https://x.example/">https://x.example/</a>`, "https://x.example/\n"},
		{`<a href="#top">top</a>`, "top\n"},
		{"<ul><li>one</li><li>two</li></ul>", "* one\n* two\n"},
		{"<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>", "a | b\n1 | 2\n"},
		{"<style>p{color:red}</style><script>x()</script><p>text</p>", "text\n"},
		{"<p>caf&eacute; &amp; &lt;tea&gt; &#8364;</p>", "café & <tea> €\n"},
		{"<p>  lots   of\n\n space </p>", "lots of space\n"},
		{"<pre>  keep\n   this</pre>", "  keep\n   this\n"},
		{`<img src="x.png" alt="Logo"> <!-- <p>hidden</p> -->end`, "Logo end\n"},
		{"<p>a > b</p>", "a > b\n"},
		{"x < y and <b>bold</b>", "x < y and bold\n"},
		{"<hr>", "----------\n"},
	} {
		if got := htmlToText(tc.in); got != tc.want {
			t.Errorf("htmlToText(%q):\n got %q\nwant %q", tc.in, got, tc.want)
		}
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

// TestConcurrentRender renders from several goroutines under -race and
// checks every message is complete and has its own Message-ID.
func TestConcurrentRender(t *testing.T) {
	cfg := baseConfig()
	cfg.MessageID = nil
	cfg.Attachments = append(cfg.Attachments, "invoices/{{.invoice}}.pdf")
	r := newRenderer(t, cfg)
	const workers, each = 4, 25
	var wg sync.WaitGroup
	ids := make(chan string, workers*each)
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				rc := zoe()
				rc.Email = fmt.Sprintf("u%d.%d@example.org", w, i)
				rc.Fields["invoice"] = []string{"A-100", "A-101"}[i%2]
				m, err := r.Render(rc)
				if err != nil {
					errs <- err
					return
				}
				msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
				if err != nil {
					errs <- err
					return
				}
				if got := msg.Header.Get("Message-Id"); got != "<"+m.MessageID+">" {
					errs <- fmt.Errorf("Message-ID header %q, Message.MessageID %q", got, m.MessageID)
					return
				}
				ids <- m.MessageID
			}
		}()
	}
	wg.Wait()
	close(ids)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Errorf("duplicate Message-ID %s", id)
		}
		if !strings.HasSuffix(id, "@acme.example") {
			t.Errorf("Message-ID %s not in the From domain", id)
		}
		seen[id] = true
	}
	if len(seen) != workers*each {
		t.Errorf("got %d messages, want %d", len(seen), workers*each)
	}
}

func TestSenderAndSeveralAuthors(t *testing.T) {
	cfg := baseConfig()
	cfg.From = "Ann <ann@acme.example>, Bob <bob@acme.example>"
	cfg.Sender = "Zoë Bot <bot@acme.example>"
	r := newRenderer(t, cfg)
	m, err := r.Render(zoe())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	from, err := msg.Header.AddressList("From")
	if err != nil || len(from) != 2 || from[1].Address != "bob@acme.example" {
		t.Errorf("From: got %v, %v; want both authors", from, err)
	}
	sender, err := mail.ParseAddress(msg.Header.Get("Sender"))
	if err != nil || sender.Name != "Zoë Bot" || sender.Address != "bot@acme.example" {
		t.Errorf("Sender: got %v, %v", sender, err)
	}
	if m.From != "bot@acme.example" {
		t.Errorf("envelope from: got %q, want the Sender", m.From)
	}
	if len(msg.Header[textproto.CanonicalMIMEHeaderKey("Sender")]) != 1 {
		t.Errorf("want exactly one Sender header")
	}
}

func TestFieldErrorUnwrap(t *testing.T) {
	cause := errors.New("boom")
	err := error(&FieldError{Field: "header X-A", Err: cause})
	if err.Error() != "header X-A: boom" || !errors.Is(err, cause) {
		t.Errorf("got %q, Is=%v", err, errors.Is(err, cause))
	}
}

func writeFile(dir, name, body string) error {
	return os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
}

func TestAddressEdgeCases(t *testing.T) {
	cfg := baseConfig()
	cfg.Name = "{{.first_name}}"
	r := newRenderer(t, cfg)
	for _, tc := range []struct{ name, email string }{
		{`\ë`, "zoe@example.org"},
		{`Zoë "Z" (x), Ünïcødé`, "zoe@example.org"},
		{"Zoë", "zoë@bücher.example"},
		{"", "plain@example.org"},
	} {
		rc := zoe()
		rc.Email = tc.email
		rc.Fields["first_name"] = tc.name
		m, err := r.Render(rc)
		if err != nil {
			t.Fatalf("%q <%s>: %v", tc.name, tc.email, err)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		to, err := msg.Header.AddressList("To")
		if err != nil || len(to) != 1 || to[0].Name != tc.name || to[0].Address != tc.email {
			t.Errorf("To for %q <%s>: got %v, %v (raw %q)", tc.name, tc.email, to, err, msg.Header.Get("To"))
		}
	}
}
