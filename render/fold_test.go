package render

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A visible group of internationalised addresses is one preformatted To
// header, which go-mail writes as it is: it is folded so that no line
// passes 78 octets, and it still parses to every address.
func TestVisibleGroupToIsFolded(t *testing.T) {
	dir := tempCampaign(t, map[string]string{"b.md": "Hello all\n"})
	cfg := Config{Dir: dir, From: "news@acme.example", Subject: "s", Markdown: "b.md", Group: Group{Visible: true}}
	r := newRenderer(t, cfg)
	var to []string
	for i := range 40 {
		to = append(to, fmt.Sprintf("用户%02d@例子.example", i))
	}
	m, err := r.RenderGroup(to)
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := bytes.Cut(m.Data, []byte("\r\n\r\n"))
	for _, l := range strings.Split(string(head), "\r\n") {
		if len(l) > 78 {
			t.Errorf("header line of %d octets: %q", len(l), l)
		}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	got, err := msg.Header.AddressList("To")
	if err != nil {
		t.Fatalf("To does not parse: %v", err)
	}
	if len(got) != len(to) {
		t.Fatalf("To holds %d addresses, want %d", len(got), len(to))
	}
	for i, a := range got {
		if a.Address != to[i] {
			t.Errorf("address %d: %q, want %q", i, a.Address, to[i])
		}
	}
}

// foldCase is a message whose header fields must be folded, and the
// values a reader must decode from them.
type foldCase struct {
	name    string
	subject string // Config.Subject; Subject decodes to it with {{.first_name}} as Zoë
	cfg     func(c *Config)
	fields  map[string]string // columns that differ from zoe's
	group   []string          // RenderGroup when non-nil
	text    map[string]string // unstructured field -> decoded value
	names   map[string]string // address field -> first display name
	pyBlank bool              // a display name of several encoded-words (cpython gh-128110)
	// pyRaw: the addresses are raw UTF-8 (RFC 6532), whose addr_spec
	// Python's email (3.11) gives as U+FFFD with an
	// UndecodableBytesDefect; only the folding is checked there.
	pyRaw bool
}

func foldCases() []foldCase {
	longName := strings.Repeat("X-Very-Long-Header-Name-", 3) + "End" // 75 octets
	group := func(c *Config) {
		c.Markdown, c.Layout, c.HTML, c.Attachments = "", "", "group.html", nil
		c.Group = Group{Visible: true}
	}
	return []foldCase{
		{name: "long subject", subject: "{{.first_name}}, Grüße aus Köln – ein sehr langer Betreff mit Umlauten äöü, der umgebrochen werden muss 🎉 und noch länger wird"},
		{name: "one encoded-word that fits the first line", subject: "{{.first_name}}, Neuigkeiten im November – Ausgabe 42"},
		{name: "CJK subject", subject: "{{.first_name}}様、日本語のメールの件名はとても長くなることがあります、そしてそれは分割されなければなりません"},
		{name: "a long first ASCII word", subject: strings.Repeat("Super", 13) + " news"},
		{name: "a word longer than a line", subject: strings.Repeat("Super", 20) + " news"},
		{
			name: "look-alikes", subject: "{{.first_name}}, news", fields: map[string]string{"first_name": strings.Repeat(issue14Word, 2)},
			names: map[string]string{"To": strings.Repeat(issue14Word, 2) + " Ünïcødé"}, pyBlank: true,
		},
		{
			name: "long header names",
			cfg: func(c *Config) {
				c.Headers = map[string]string{longName[:60]: "Grüße aus Köln, {{.first_name}}", longName: "é {{.id}}", "X-Plain": strings.Repeat("word ", 30)}
			},
			text: map[string]string{longName[:60]: "Grüße aus Köln, Zoë", longName: "é u-7", "X-Plain": strings.TrimSpace(strings.Repeat("word ", 30))},
		},
		{
			name: "display names at the room of each field",
			cfg: func(c *Config) {
				c.From = `"Ünïcødé Acme Newsroom Ölçek Straße" <news@acme.example>`
				c.ReplyTo = `"Ünïcødé Acme Support Ölçek Straße" <help@acme.example>`
				c.Sender = `"Ünïcødé Acme Bot Ölçek Straße äö" <bot@acme.example>`
				c.Name = "{{.first_name}} {{.last_name}} Großartig-Ölçek"
			},
			names: map[string]string{
				"From": "Ünïcødé Acme Newsroom Ölçek Straße", "Reply-To": "Ünïcødé Acme Support Ölçek Straße",
				"Sender": "Ünïcødé Acme Bot Ölçek Straße äö", "To": "Zoë Ünïcødé Großartig-Ölçek",
			},
		},
		{
			name: "display name of several runs",
			cfg: func(c *Config) {
				c.Name = "{{.first_name}} {{.last_name}} von und zu Großartig-Ölçek-Ünïcødé-Straßenbahn"
			},
			names: map[string]string{"To": "Zoë Ünïcødé von und zu Großartig-Ölçek-Ünïcødé-Straßenbahn"}, pyBlank: true,
		},
		{
			name: "visible group, international addresses", subject: "Team news", cfg: group, pyRaw: true,
			group: []string{"用户01@例子.example", "ann@example.org", "用户02@例子.example", "bob@example.org", "用户03@例子.example", "用户04@例子.example"},
		},
		{
			name: "visible group", subject: "Team news", cfg: group,
			group: []string{"ann@example.org", "bob@example.org", "carol@example.org", "dave@example.org", "eve@example.org", "frank@example.org"},
		},
		{
			name: "signed", subject: "{{.first_name}}, Grüße aus Köln – ein sehr langer Betreff mit Umlauten",
			cfg: func(c *Config) {
				c.DKIM = &DKIM{Domain: "acme.example", Selector: "ed2026", Signer: loadKey("dkim-ed25519.pem")}
			},
		},
	}
}

// TestHeadersFoldForReaders renders messages whose header fields must be
// folded, and reads them, with every golden, as Go (net/mail and
// mime.WordDecoder) and Python's email (policy.default) do: the first
// line of a field carries the start of its value (RFC 5322 section
// 2.2.3), lines stay within 78 octets where a blank allows, no decoded
// value starts with a blank, and each value decodes to exactly the data.
func TestHeadersFoldForReaders(t *testing.T) {
	var names []string
	var msgs [][]byte
	var cases []foldCase
	for _, tc := range foldCases() {
		cfg := baseConfig()
		if tc.subject != "" {
			cfg.Subject = tc.subject
			first := cmp.Or(tc.fields["first_name"], zoe().Fields["first_name"])
			tc.text = maps.Clone(tc.text)
			if tc.text == nil {
				tc.text = map[string]string{}
			}
			tc.text["Subject"] = strings.ReplaceAll(tc.subject, "{{.first_name}}", first)
		}
		if tc.cfg != nil {
			tc.cfg(&cfg)
		}
		r := newRenderer(t, cfg)
		var m *Message
		var err error
		if tc.group != nil {
			m, err = r.RenderGroup(tc.group)
		} else {
			rc := zoe()
			for k, v := range tc.fields {
				rc.Fields[k] = v
			}
			m, err = r.Render(rc)
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		names, msgs, cases = append(names, tc.name), append(msgs, m.Data), append(cases, tc)
	}
	goldens, err := filepath.Glob(filepath.Join("testdata", "golden", "*.eml"))
	if err != nil || len(goldens) == 0 {
		t.Fatalf("no goldens: %v", err)
	}
	for _, g := range goldens {
		data, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		names, msgs, cases = append(names, "golden "+filepath.Base(g)), append(msgs, data), append(cases, foldCase{})
	}

	check := func(t *testing.T, reader string, tc foldCase, d *decoded) {
		checkNoBreaks(t, reader, d)
		checkNoLeadingBlank(t, reader, d)
		for f, want := range tc.text {
			if got, _ := d.value(f); got != want {
				t.Errorf("%s: %s got %q, want %q", reader, f, got, want)
			}
		}
		for f, want := range tc.names {
			l := d.Addrs[f]
			if len(l) == 0 {
				t.Errorf("%s: no %s address", reader, f)
				continue
			}
			got := l[0][0]
			if got != want && tc.pyBlank && reader == "Python" && strings.ReplaceAll(got, " ", "") == strings.ReplaceAll(want, " ", "") {
				t.Logf("%s: display name %q has blanks between encoded-words (cpython gh-128110)", reader, got)
				continue
			}
			if got != want {
				t.Errorf("%s: %s display name got %q, want %q", reader, f, got, want)
			}
		}
		if tc.group != nil && !(tc.pyRaw && reader == "Python") {
			var got []string
			for _, a := range d.Addrs["To"] {
				got = append(got, a[1])
			}
			if !slices.Equal(got, tc.group) {
				t.Errorf("%s: To got %q, want %q", reader, got, tc.group)
			}
		}
	}
	for i, data := range msgs {
		t.Run(names[i], func(t *testing.T) {
			checkHeaderLines(t, data)
			check(t, "Go", cases[i], decodeGo(t, data))
		})
	}
	t.Run("python3", func(t *testing.T) {
		all := decodePythonAll(t, python(t), msgs)
		for i, d := range all {
			t.Run(names[i], func(t *testing.T) { check(t, "Python", cases[i], d) })
		}
	})
}

// refoldHeaders leaves a header block with no field folded after its
// colon as it is, without copying it, and folds such a field again with
// its value on the first line, the rest of the message untouched.
func TestRefoldHeaders(t *testing.T) {
	plain := []byte("Date: x\r\nSubject: Team news\r\nTo: <a@example.org>,\r\n <b@example.org>\r\nX-Note: see:\r\n this\r\n\r\nSubject:\r\n body\r\n")
	if allocs := testing.AllocsPerRun(100, func() { refoldHeaders(plain) }); allocs != 0 {
		t.Errorf("refoldHeaders allocated %v times for a block with nothing to fold", allocs)
	}
	if got := refoldHeaders(slices.Clone(plain)); !bytes.Equal(got, plain) {
		t.Errorf("got\n%q\nwant it as it was", got)
	}
	word := "=?UTF-8?q?" + strings.Repeat("a", 60) + "?="
	for _, tc := range []struct{ in, want string }{
		{"Subject:\r\n " + word + "\r\n", "Subject: " + word + "\r\n"},
		{"Subject:\r\n " + word + "\r\n " + word + "\r\n", "Subject: " + word + "\r\n " + word + "\r\n"},
		{"X:\r\n a b\r\n c\r\n", "X: a b c\r\n"},
		{"X:\r\n\t" + strings.Repeat("a", 100) + " b\r\n", "X: " + strings.Repeat("a", 100) + "\r\n b\r\n"},
		{"X-Empty:\r\nY: y\r\n", "X-Empty:\r\nY: y\r\n"},
	} {
		in := "Date: x\r\n" + tc.in + "Z: z\r\n\r\nX:\r\n body\r\n"
		want := "Date: x\r\n" + tc.want + "Z: z\r\n\r\nX:\r\n body\r\n"
		if got := refoldHeaders([]byte(in)); string(got) != want {
			t.Errorf("refold %q:\n got %q\nwant %q", tc.in, got, want)
		}
	}
}

// foldHeader keeps the first word on the first line unless that passes
// 998 octets, and folds at 78 octets where a blank allows.
func TestFoldHeaderFirstLine(t *testing.T) {
	long := strings.Repeat("a", 900)
	for _, tc := range []struct{ name, value, want string }{
		{"To", long + " b", long + "\r\n b"},
		{strings.Repeat("N", 100), long, "\r\n " + long},
		{"To", "a b", "a b"},
		{"To", strings.Repeat("abcd ", 20) + "e", strings.Repeat("abcd ", 14) + "abcd\r\n " + strings.Repeat("abcd ", 5) + "e"},
	} {
		if got := foldHeader(tc.name, tc.value); got != tc.want {
			t.Errorf("foldHeader(%.10s, %.20q):\n got %q\nwant %q", tc.name, tc.value, got, tc.want)
		}
	}
}
