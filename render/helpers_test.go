package render

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// fixedNow is the Date of every test message.
func fixedNow() time.Time {
	return time.Date(2026, 11, 25, 9, 30, 0, 0, time.FixedZone("CET", 3600))
}

// baseConfig is the newsletter campaign of testdata/campaign.
func baseConfig() Config {
	return Config{
		Dir:         "testdata/campaign",
		From:        `"Acme News" <news@acme.example>`,
		ReplyTo:     "help@acme.example",
		Subject:     "{{.first_name}}, Neuigkeiten im November – Ausgabe {{.Vars.issue}}",
		Name:        "{{.first_name}} {{.last_name}}",
		Markdown:    "body.md",
		Layout:      "layout.html",
		Attachments: []string{"Preisliste März.pdf"},
		Headers:     map[string]string{"X-Campaign": "november-{{.Vars.issue}}"},
		Vars:        map[string]any{"issue": 42, "title": "Acme News"},
		Now:         fixedNow,
		MessageID:   func() string { return "test.1@acme.example" },
	}
}

func zoe() Recipient {
	return Recipient{Row: 2, Email: "zoe@example.org", Fields: map[string]string{
		"email": "zoe@example.org", "first_name": "Zoë", "last_name": "Ünïcødé",
		"plan": "Pro", "id": "u-7", "invoice": "A-100", "amount": "15.00", "due": "2026-12-01",
	}}
}

func newRenderer(t testing.TB, cfg Config) *Renderer {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// contentOf renders what an individual message for fields says, as Render
// does before composing it.
func contentOf(r *Renderer, fields map[string]string) (*content, error) {
	errs := fieldErrors{fields: fields}
	c := r.content(fields, r.data(fields, nil), &errs)
	return c, errs.err()
}

var boundaryRE = regexp.MustCompile(`boundary=([0-9A-Za-z'()+_,\-./:=?]+)`)

// normalize replaces each distinct MIME boundary (in order of first
// appearance) by a fixed string of the same length, and the variable tags of
// a DKIM-Signature (see normalizeSig), so the golden comparison is
// byte-exact for everything else.
func normalize(data []byte) []byte {
	seen := map[string]bool{}
	for _, m := range boundaryRE.FindAllSubmatch(data, -1) {
		b := string(m[1])
		if seen[b] {
			continue
		}
		seen[b] = true
		fixed := fmt.Sprintf("BOUNDARY-%d-", len(seen))
		fixed += strings.Repeat("x", max(0, len(b)-len(fixed)))
		data = bytes.ReplaceAll(data, []byte(b), []byte(fixed[:len(b)]))
	}
	return normalizeSig(data)
}

var (
	sigTimeRE     = regexp.MustCompile(`\bt=\d+`)
	sigBodyHashRE = regexp.MustCompile(`\bbh=[A-Za-z0-9+/=]+`)
)

// normalizeSig fixes t=, bh= and b= inside a leading DKIM-Signature: t= is
// time.Now and bh= covers the random MIME boundaries. The signature itself
// is checked by verifyDKIM instead.
func normalizeSig(data []byte) []byte {
	if !bytes.HasPrefix(data, []byte("DKIM-Signature:")) {
		return data
	}
	end := bytes.Index(data, []byte("\r\n"))
	for end >= 0 && end+2 < len(data) && (data[end+2] == ' ' || data[end+2] == '\t') {
		end += 2 + bytes.Index(data[end+2:], []byte("\r\n"))
	}
	head := sigTimeRE.ReplaceAll(data[:end], []byte("t=1700000000"))
	head = sigBodyHashRE.ReplaceAll(head, []byte("bh=BODYHASH"))
	// go-msgauth puts b= last, on its own folded line.
	i := bytes.Index(head, []byte("\r\n b="))
	if i < 0 {
		return data
	}
	out := append([]byte(nil), head[:i+5]...)
	out = append(out, "SIGNATURE"...)
	return append(out, data[end:]...)
}

func decodeQP(t *testing.T, b []byte) []byte {
	t.Helper()
	d, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(b)))
	if err != nil {
		t.Fatalf("quoted-printable: %v", err)
	}
	return d
}

// checkGolden compares data (normalised) with testdata/golden/name.eml,
// rewriting it under -update.
func checkGolden(t *testing.T, name string, data []byte) {
	t.Helper()
	got := normalize(data)
	path := filepath.Join("testdata", "golden", name+".eml")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -run %s -update): %v", t.Name(), err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden %s:\n%s", t.Name(), path, firstDiff(got, want))
	}
}

func firstDiff(got, want []byte) string {
	gl := strings.Split(string(got), "\n")
	wl := strings.Split(string(want), "\n")
	for i := 0; i < len(gl) || i < len(wl); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			return fmt.Sprintf("line %d:\n got %q\nwant %q", i+1, g, w)
		}
	}
	return "(same lines, different bytes)"
}

// part is a parsed MIME node.
type part struct {
	typ      string
	params   map[string]string
	header   map[string][]string
	filename string
	body     []byte
	children []*part
}

// parseMessage parses data with net/mail and mime/multipart, recursively.
func parseMessage(t *testing.T, data []byte) (*mail.Message, *part) {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(data, []byte("\r\n"), nil), []byte("\n")) {
		t.Fatalf("message has a bare LF")
	}
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse message: %v", err)
	}
	p := parsePart(t, msg.Header.Get("Content-Type"), msg.Header, msg.Body)
	return msg, p
}

func parsePart(t *testing.T, ctype string, h map[string][]string, body io.Reader) *part {
	t.Helper()
	typ, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		t.Fatalf("content type %q: %v", ctype, err)
	}
	p := &part{typ: typ, params: params, header: h}
	if !strings.HasPrefix(typ, "multipart/") {
		p.body, err = io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	mr := multipart.NewReader(body, params["boundary"])
	for {
		np, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		c := parsePart(t, np.Header.Get("Content-Type"), np.Header, np)
		c.filename = np.FileName()
		if c.body != nil && strings.EqualFold(np.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			c.body = decodeQP(t, c.body)
		}
		p.children = append(p.children, c)
	}
	return p
}

// shape renders the MIME tree as "type[child,child]".
func (p *part) shape() string {
	if len(p.children) == 0 {
		return p.typ
	}
	s := make([]string, len(p.children))
	for i, c := range p.children {
		s[i] = c.shape()
	}
	return p.typ + "[" + strings.Join(s, ",") + "]"
}

// find returns the first node of the given type, depth first.
func (p *part) find(typ string) *part {
	if p.typ == typ {
		return p
	}
	for _, c := range p.children {
		if f := c.find(typ); f != nil {
			return f
		}
	}
	return nil
}

func (p *part) all(fn func(*part)) {
	fn(p)
	for _, c := range p.children {
		c.all(fn)
	}
}
