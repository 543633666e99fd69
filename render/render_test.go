package render

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"mime"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// loadKey reads a PKCS#8 test key from testdata; it panics because keys
// are fixed fixtures.
func loadKey(file string) crypto.Signer {
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		panic(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		panic(file + ": no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		panic(err)
	}
	return k.(crypto.Signer)
}

// goldenCase is one golden message and what its parsed MIME tree must be.
type goldenCase struct {
	name    string
	cfg     func(c *Config)
	group   []string // RenderGroup when non-nil
	shape   string
	headers map[string]string // decoded header values that must match
	absent  []string          // headers that must not exist
	files   []string          // attachment file names, decoded
	text    []string          // substrings of the text/plain part
	html    []string          // substrings of the text/html part
	noHTML  []string          // substrings the html must not contain
}

func goldenCases() []goldenCase {
	return []goldenCase{
		{
			name:  "newsletter",
			cfg:   func(c *Config) {},
			shape: "multipart/mixed[multipart/related[multipart/alternative[text/plain,text/html],image/png],application/pdf]",
			headers: map[string]string{
				"Subject":    "Zoë, Neuigkeiten im November – Ausgabe 42",
				"To":         "Zoë Ünïcødé <zoe@example.org>",
				"From":       "Acme News <news@acme.example>",
				"Reply-To":   "<help@acme.example>",
				"Message-ID": "<test.1@acme.example>",
				"Date":       "Wed, 25 Nov 2026 09:30:00 +0100",
				"X-Campaign": "november-42",
			},
			absent: []string{"Bcc", "User-Agent", "X-Mailer", "List-Unsubscribe", "Sender"},
			files:  []string{"Preisliste März.pdf"},
			text: []string{"Hello Zoë!\n==========", "issue 42", "link to the archive <https://acme.example/archive>",
				"* first point", "1. one\n2. two", "Plan | Price\nBasic | 5 €\nPro | 15 €", "> A quote\n> on two lines",
				"    indented code", "~~old~~ new", "[x] done", "Acme logo"},
			html: []string{"<h1>Hello Zoë!</h1>", "<table>", "<del>old</del>", `<img src="https://cdn.acme.example/x.png"`,
				"Sent to Zoë", `href="https://acme.example/u/u-7"`, "<title>Acme News</title>"},
			noHTML: []string{`src="logo.png"`},
		},
		{
			name: "html-derived-text",
			cfg: func(c *Config) {
				c.Markdown, c.Layout = "", ""
				c.HTML = "body.html"
				c.Subject = "Invoice {{.invoice}}"
				c.Attachments = []string{"invoices/{{.invoice}}.pdf"}
				c.Headers = nil
				c.ReplyTo = ""
			},
			shape:   "multipart/mixed[multipart/related[multipart/alternative[text/plain,text/html],image/png],application/pdf]",
			headers: map[string]string{"Subject": "Invoice A-100"},
			absent:  []string{"Reply-To"},
			files:   []string{"A-100.pdf"},
			text: []string{"Invoice for Zoë\n\nDear Zoë Ünïcødé,\nyour invoice A-100 is attached.", "* Amount: 15.00 €",
				"Item | Price\nWidget | 15.00", "Help centre <https://acme.example/help?id=u-7> or help@acme.example.", "Acme logo"},
			html: []string{"<h1>Invoice for Zoë</h1>"},
		},
		{
			name: "text-template",
			cfg: func(c *Config) {
				c.Markdown, c.Layout = "", ""
				c.HTML, c.Text = "body.html", "body.txt"
				c.Attachments = nil
				c.Headers = nil
			},
			shape: "multipart/related[multipart/alternative[text/plain,text/html],image/png]",
			text:  []string{"Dear Zoë,\n\nyour invoice A-100 over 15.00 EUR is attached.\n"},
		},
		{
			name: "group-bcc",
			cfg: func(c *Config) {
				c.Subject = "Team news {{.Vars.issue}}"
				c.Markdown, c.Layout = "", ""
				c.HTML = "group.html"
				c.Attachments = nil
				c.Group = Group{To: "Acme team <team@acme.example>"}
				c.Unsubscribe = Unsubscribe{URL: "https://acme.example/u/x"}
			},
			group:   []string{"ann@example.org", "bob@example.org"},
			shape:   "multipart/related[multipart/alternative[text/plain,text/html],image/png]",
			headers: map[string]string{"To": "Acme team <team@acme.example>", "Subject": "Team news 42"},
			absent:  []string{"Bcc", "Cc", "List-Unsubscribe", "List-Unsubscribe-Post"},
		},
		{
			name: "group-visible",
			cfg: func(c *Config) {
				c.Subject = "Team news {{.Vars.issue}}"
				c.Markdown, c.Layout = "", ""
				c.HTML = "group.html"
				c.Attachments = nil
				c.Group = Group{To: "Acme team <team@acme.example>", Visible: true}
			},
			group:   []string{"ann@example.org", "bob@example.org"},
			shape:   "multipart/related[multipart/alternative[text/plain,text/html],image/png]",
			headers: map[string]string{"To": "<ann@example.org>, <bob@example.org>"},
			absent:  []string{"Bcc"},
		},
		{
			name: "unsubscribe",
			cfg: func(c *Config) {
				c.Attachments = nil
				c.Unsubscribe = Unsubscribe{URL: "https://acme.example/u/{{.id}}", Mailto: "unsubscribe@acme.example?subject={{.id}}"}
			},
			shape: "multipart/related[multipart/alternative[text/plain,text/html],image/png]",
			headers: map[string]string{
				"List-Unsubscribe":      "<https://acme.example/u/u-7>, <mailto:unsubscribe@acme.example?subject=u-7>",
				"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
			},
		},
		{
			name: "dkim-rsa",
			cfg: func(c *Config) {
				c.Unsubscribe = Unsubscribe{URL: "https://acme.example/u/{{.id}}"}
				c.DKIM = &DKIM{Domain: "acme.example", Selector: "rsa2026", Signer: loadKey("dkim-rsa.pem"),
					Headers: []string{"From", "To", "Subject", "Date", "Message-ID", "Reply-To", "List-Unsubscribe",
						"List-Unsubscribe-Post", "MIME-Version", "Content-Type"}}
			},
			shape:   "multipart/mixed[multipart/related[multipart/alternative[text/plain,text/html],image/png],application/pdf]",
			headers: map[string]string{"List-Unsubscribe": "<https://acme.example/u/u-7>"},
			files:   []string{"Preisliste März.pdf"},
		},
		{
			name: "dkim-ed25519",
			cfg: func(c *Config) {
				c.DKIM = &DKIM{Domain: "acme.example", Selector: "ed2026", Signer: loadKey("dkim-ed25519.pem")}
			},
			shape: "multipart/mixed[multipart/related[multipart/alternative[text/plain,text/html],image/png],application/pdf]",
			files: []string{"Preisliste März.pdf"},
		},
	}
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			tc.cfg(&cfg)
			r := newRenderer(t, cfg)
			var m *Message
			var err error
			if tc.group != nil {
				m, err = r.RenderGroup(tc.group)
			} else {
				m, err = r.Render(zoe())
			}
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			checkGolden(t, tc.name, m.Data)
			checkMessage(t, tc, m)
			if cfg.DKIM != nil {
				verifyDKIM(t, m.Data, cfg.DKIM)
			}
		})
	}
}

// checkMessage parses the message back and asserts its tree, headers,
// parts, Content-IDs and file names, so a wrong golden cannot be blessed.
func checkMessage(t *testing.T, tc goldenCase, m *Message) {
	t.Helper()
	msg, root := parseMessage(t, m.Data)
	checkHeaderLines(t, m.Data)
	if got := root.shape(); got != tc.shape {
		t.Errorf("MIME tree: got %s, want %s", got, tc.shape)
	}
	dec := new(mime.WordDecoder)
	for k, want := range tc.headers {
		raw := msg.Header[textproto.CanonicalMIMEHeaderKey(k)]
		if len(raw) != 1 {
			t.Errorf("header %s: got %d fields, want 1", k, len(raw))
			continue
		}
		got, err := dec.DecodeHeader(raw[0])
		if err != nil {
			t.Errorf("header %s: %v", k, err)
		}
		if k == "To" || k == "From" || k == "Reply-To" {
			l, err := msg.Header.AddressList(k)
			if err != nil {
				t.Fatalf("header %s: %v", k, err)
			}
			s := make([]string, len(l))
			for i, a := range l {
				s[i] = a.Address
				if a.Name != "" {
					s[i] = a.Name + " <" + a.Address + ">"
				} else {
					s[i] = "<" + a.Address + ">"
				}
			}
			got = strings.Join(s, ", ")
		}
		if got != want {
			t.Errorf("header %s: got %q, want %q", k, got, want)
		}
	}
	for _, k := range tc.absent {
		if _, ok := msg.Header[textproto.CanonicalMIMEHeaderKey(k)]; ok {
			t.Errorf("header %s present, want absent", k)
		}
	}
	for k, v := range msg.Header {
		if len(v) != 1 && k != "Received" {
			t.Errorf("header %s appears %d times", k, len(v))
		}
	}
	if m.MessageID != "test.1@acme.example" {
		t.Errorf("MessageID: got %q", m.MessageID)
	}
	if m.From != "news@acme.example" {
		t.Errorf("envelope from: got %q, want news@acme.example", m.From)
	}
	wantTo := []string{"zoe@example.org"}
	if tc.group != nil {
		wantTo = tc.group
	}
	if !slices.Equal(m.To, wantTo) {
		t.Errorf("envelope to: got %v, want %v", m.To, wantTo)
	}

	text, html := root.find("text/plain"), root.find("text/html")
	if text == nil || html == nil {
		t.Fatalf("missing text/plain or text/html part")
	}
	if alt := root.find("multipart/alternative"); alt == nil || len(alt.children) != 2 ||
		alt.children[0].typ != "text/plain" || alt.children[1].typ != "text/html" {
		t.Errorf("multipart/alternative must hold text/plain then text/html")
	}
	plain := strings.ReplaceAll(string(text.body), "\r\n", "\n")
	for _, s := range tc.text {
		if !strings.Contains(plain, s) {
			t.Errorf("text/plain lacks %q; got:\n%s", s, text.body)
		}
	}
	for _, s := range tc.html {
		if !strings.Contains(string(html.body), s) {
			t.Errorf("text/html lacks %q; got:\n%s", s, html.body)
		}
	}
	for _, s := range tc.noHTML {
		if strings.Contains(string(html.body), s) {
			t.Errorf("text/html contains %q", s)
		}
	}

	// Every inline image is referenced by cid: in the HTML, and every cid:
	// reference has its image.
	var files []string
	cids := map[string]bool{}
	root.all(func(p *part) {
		disp, _, _ := mime.ParseMediaType(firstOf(p.header["Content-Disposition"]))
		switch disp {
		case "attachment":
			files = append(files, p.filename)
		case "inline":
			id := firstOf(p.header["Content-Id"])
			if !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, ">") {
				t.Errorf("Content-ID %q lacks angle brackets", id)
			}
			cid := strings.Trim(id, "<>")
			cids[cid] = true
			if !strings.Contains(string(html.body), `src="cid:`+cid+`"`) {
				t.Errorf("image %s (%s) is not referenced by the HTML", p.filename, cid)
			}
		}
	})
	for _, ref := range cidRefs(string(html.body)) {
		if !cids[ref] {
			t.Errorf("HTML references cid:%s but no part has that Content-ID", ref)
		}
	}
	if !slices.Equal(files, tc.files) {
		t.Errorf("attachments: got %q, want %q", files, tc.files)
	}
}

func firstOf(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func cidRefs(html string) []string {
	var refs []string
	for {
		i := strings.Index(html, `"cid:`)
		if i < 0 {
			return refs
		}
		html = html[i+5:]
		refs = append(refs, html[:strings.IndexByte(html, '"')])
	}
}

func TestHTMLTemplateEscapes(t *testing.T) {
	cfg := baseConfig()
	cfg.Markdown, cfg.Layout, cfg.HTML, cfg.Attachments = "", "", "body.html", nil
	r := newRenderer(t, cfg)
	rc := zoe()
	rc.Fields["first_name"] = `<script>alert("x")</script>`
	rc.Fields["id"] = `"><script>`
	c, err := contentOf(r, rc.Fields)
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
