package render

import (
	"bytes"
	"errors"
	"mime"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// issue14Word is the CSV value of issue 14: an RFC 2047 encoded-word that
// every reader decodes to "Eve\r\nBcc: spy@evil.example" (the class of
// CVE-2024-6923).
const issue14Word = "=?UTF-8?Q?Eve=0D=0ABcc:_spy@evil.example?="

// injectConfig puts the columns first_name, last_name, id and note in
// every header position: Subject, the To display name, an extra header and
// the List-Unsubscribe URL and mailto.
func injectConfig() Config {
	return Config{
		Dir: "testdata/campaign", From: `"Acme News" <news@acme.example>`,
		Subject: "{{.first_name}}, what's new {{.note}}",
		Name:    "{{.first_name}} {{.last_name}}",
		HTML:    "group.html",
		Headers: map[string]string{"X-Customer": "{{.first_name}} {{.id}}"},
		Unsubscribe: Unsubscribe{
			URL:    "https://acme.example/u/{{.first_name}}/{{.id}}",
			Mailto: "unsubscribe@acme.example?subject={{.id}}",
		},
		Vars: map[string]any{"issue": 1}, Now: fixedNow,
		MessageID: func() string { return "m.1@acme.example" },
	}
}

// injectFields are the header fields of every message of injectConfig.
var injectFields = []string{"Content-Type", "Date", "From", "List-Unsubscribe", "List-Unsubscribe-Post",
	"Message-Id", "Mime-Version", "Subject", "To", "X-Customer"}

// TestEncodedWordInjection renders the issue's row and its variants, with
// values that are, hold or split an encoded-word, and reads the bytes back
// with Go (net/mail, mime.WordDecoder) and with Python's email
// (policy.default): no field decodes to CR, LF or NUL or is refused, no
// field is added, and Subject, the display name and the extra header
// decode to exactly the rendered values (RFC 2047 section 5).
func TestEncodedWordInjection(t *testing.T) {
	r := newRenderer(t, injectConfig())
	for _, tc := range []struct {
		name                  string
		first, last, id, note string
		asIs                  bool // plain ASCII: Subject goes out unencoded
		// pyBlanks: the display name needs two encoded-words side by
		// side, whose blank Python's email before cpython gh-128110
		// keeps (RFC 2047 section 6.2 drops it; Go does).
		pyBlanks bool
	}{
		{name: "issue 14 row", first: issue14Word, last: "Bad", id: "x9", note: "in November"},
		{name: "B word, lower case", first: "=?utf-8?b?RXZlDQpCY2M6IHNweUBldmlsLmV4YW1wbGU=?=", last: "Bad", id: "x9"},
		{name: "word inside a word", first: "x=?utf-8?q?=00?=y", last: "Bad", id: "=?utf-8?q?=0A?="},
		{name: "word with non-ASCII", first: "é" + issue14Word, id: "x9", note: "–"},
		{name: "long name, all encoded", first: "Zoë" + issue14Word, last: "Ünïcødé", id: "x9", pyBlanks: true},
		{name: "word across two values", first: "=?utf-8?q?a", last: "b=0D=0ABcc:_x@evil.example?=", id: "?=", note: "b=0D?="},
		{name: "halves in the wrong order", first: "?=", last: "=?", id: "=?", note: "=?", asIs: true},
		{name: "halves in different columns", first: "=?", last: "?=", id: "?=", note: "?="},
		{name: "word in the name only", first: "Eve", last: issue14Word, id: "x9", note: "today", asIs: true},
		{name: "long subject", first: "Eve", last: "Bad", id: "x9", note: strings.Repeat(issue14Word+" ", 4)},
		{name: "long name, plain words kept", first: issue14Word + " Eve O'Brien", last: `"the spy", Ltd.`, id: "x9"},
		{name: "plain ASCII", first: "Eve", last: `O'Brien "Evie" \ (x)`, id: "x9", note: "a =? b, c", asIs: true},
		{name: "plain, half marks", first: "Eve", last: "?= =?", id: "?=x=?", note: "?= then =?", asIs: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := Recipient{Row: 2, Email: "eve@example.org", Fields: map[string]string{
				"email": "eve@example.org", "first_name": tc.first, "last_name": tc.last, "id": tc.id, "note": tc.note, "plan": "pro",
			}}
			m, err := r.Render(rc)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			subject := oneLine(tc.first + ", what's new " + tc.note)
			name := oneLine(tc.first + " " + tc.last)
			custom := oneLine(tc.first + " " + tc.id)
			if m.Subject != subject {
				t.Errorf("Message.Subject: got %q, want %q", m.Subject, subject)
			}
			checkHeaderLines(t, m.Data)
			head, _, _ := bytes.Cut(m.Data, []byte("\r\n\r\n"))
			unfolded := strings.ReplaceAll(string(head), "\r\n ", " ")
			if tc.asIs != strings.Contains(unfolded, "\r\nSubject: "+subject+"\r\n") {
				t.Errorf("Subject written as it is: got %v, want %v\n%s", !tc.asIs, tc.asIs, head)
			}
			for _, v := range []string{tc.first, tc.last, tc.id, tc.note} {
				if looksEncoded(v) && strings.Contains(unfolded, v) {
					t.Errorf("value %q is in the header as it is\n%s", v, head)
				}
			}
			checkReader(t, "Go", decodeGo(t, m.Data), subject, name, custom, false)
			if !t.Failed() {
				checkReader(t, "Python", decodePython(t, python(t), m.Data), subject, name, custom, tc.pyBlanks)
			}
		})
	}
}

// checkReader checks what one reader decoded from a message of
// injectConfig for eve@example.org. With blanks, the display name may hold
// blanks the value does not (see pyBlanks), but nothing else.
func checkReader(t *testing.T, reader string, d *decoded, subject, name, custom string, blanks bool) {
	t.Helper()
	checkNoBreaks(t, reader, d)
	checkNoLeadingBlank(t, reader, d)
	var fields []string
	for _, f := range d.Fields {
		fields = append(fields, strings.ToLower(f[0]))
	}
	slices.Sort(fields)
	want := make([]string, len(injectFields))
	for i, f := range injectFields {
		want[i] = strings.ToLower(f)
	}
	if !slices.Equal(fields, want) {
		t.Errorf("%s: fields %v, want %v", reader, fields, want)
	}
	if got, _ := d.value("Subject"); got != subject {
		t.Errorf("%s: Subject got %q, want %q", reader, got, subject)
	}
	if got, _ := d.value("X-Customer"); got != custom {
		t.Errorf("%s: X-Customer got %q, want %q", reader, got, custom)
	}
	gotTo, wantTo := d.Addrs["To"], [][2]string{{name, "eve@example.org"}}
	if blanks && len(gotTo) == 1 && gotTo[0] != wantTo[0] && gotTo[0][1] == wantTo[0][1] &&
		strings.ReplaceAll(gotTo[0][0], " ", "") == strings.ReplaceAll(name, " ", "") {
		t.Logf("%s: display name %q has blanks between encoded-words (cpython gh-128110)", reader, gotTo[0][0])
		gotTo = wantTo
	}
	if !slices.Equal(gotTo, wantTo) {
		t.Errorf("%s: To got %q, want %q", reader, gotTo, wantTo)
	}
	for _, f := range []string{"Subject", "To", "X-Customer", "List-Unsubscribe"} {
		if len(d.Defects[f]) > 0 {
			t.Errorf("%s: %s has defects %v", reader, f, d.Defects[f])
		}
	}
}

// TestEncodedWordConfig covers the addresses and file names of the
// campaign: a display name that net/mail decodes to a line break is
// refused by New, an ASCII look-alike in one is encoded like a CSV value,
// and addresses, List-Unsubscribe URIs and attachment names that readers
// would decode are refused.
func TestEncodedWordConfig(t *testing.T) {
	t.Run("from name decoding to CR LF", func(t *testing.T) {
		for _, from := range []string{
			"=?utf-8?q?Acme=0D=0ABcc=3A_x=40evil.example?= <news@acme.example>",
			"=?utf-8?q?Acme=00?= <news@acme.example>",
		} {
			cfg := injectConfig()
			cfg.From = from
			_, err := New(cfg)
			if err == nil || !errors.Is(err, errLineBreak) || !strings.Contains(err.Error(), "from") {
				t.Errorf("From %q: got %v, want a line break error on from", from, err)
			}
		}
	})
	t.Run("from name decoding to a control character", func(t *testing.T) {
		cfg := injectConfig()
		cfg.From = "=?utf-8?q?Acme=1CNews?= <news@acme.example>"
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), `from "=?utf-8?q?Acme=1CNews?= <news@acme.example>": display name "Acme\x1cNews" contains the control character '\x1c'`) {
			t.Errorf("got %v, want a control character error on from", err)
		}
	})
	t.Run("look-alike names of the campaign are encoded", func(t *testing.T) {
		cfg := injectConfig()
		cfg.From = `"` + issue14Word + `" <news@acme.example>`
		cfg.ReplyTo = `"=?utf-8?q?a?=" <help@acme.example>`
		cfg.Sender = `"?= Bot" <bot@acme.example>`
		m, err := newRenderer(t, cfg).Render(Recipient{Email: "eve@example.org", Fields: eveFields("x9")})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][][2]string{
			"From":     {{issue14Word, "news@acme.example"}},
			"Reply-To": {{"=?utf-8?q?a?=", "help@acme.example"}},
			"Sender":   {{"?= Bot", "bot@acme.example"}},
		}
		readers := map[string]*decoded{"Go": decodeGo(t, m.Data)}
		if py, err := pythonOrSkip(t); err == nil {
			readers["Python"] = decodePython(t, py, m.Data)
		}
		for reader, d := range readers {
			checkNoBreaks(t, reader, d)
			for f, w := range want {
				if !slices.Equal(d.Addrs[f], w) {
					t.Errorf("%s: %s got %q, want %q", reader, f, d.Addrs[f], w)
				}
			}
		}
	})
	for _, tc := range []struct {
		name  string
		cfg   func(*Config)
		email string
		want  string
	}{
		{"recipient address", nil, "=?utf-8?q?=0D=0A?=@example.org", "address"},
		{"recipient address, one half", nil, "eve?=@example.org", "address"},
		{"unsubscribe template", func(c *Config) { c.Unsubscribe.URL = "https://acme.example/u?a=?utf-8?q?=0D?=" }, "", "unsubscribe"},
		{"attachment name", func(c *Config) { c.Attachments = []string{"invoices/{{.id}}.pdf"} }, "", "attachment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := injectConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			if tc.name == "attachment name" {
				cfg.Dir = tempCampaign(t, map[string]string{"group.html": "<p>x</p>", "invoices/=?utf-8?q?=0D=0A?=.pdf": "%PDF"})
			}
			email := tc.email
			if email == "" {
				email = "eve@example.org"
			}
			_, err := newRenderer(t, cfg).Render(Recipient{Email: email, Fields: eveFields("=?utf-8?q?=0D=0A?=")})
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.want || !strings.Contains(err.Error(), "RFC 2047") {
				t.Fatalf("got %v, want a FieldError on %s naming RFC 2047", err, tc.want)
			}
		})
	}
}

// TestHeaderValueControls: a control character other than the tab in a
// header value is refused, encoded or not, as readers disagree on it
// (Python's email takes U+001C for a blank in a display name).
func TestHeaderValueControls(t *testing.T) {
	r := newRenderer(t, injectConfig())
	for _, tc := range []struct {
		column, value, field string
	}{
		{"last_name", "Bad\x1cEve", "name"},
		{"note", "\x01", "subject"},
		{"note", "\u0085", "subject"},
		{"id", "x\x7f", "header X-Customer"},
	} {
		f := eveFields("x9")
		f[tc.column] = tc.value
		_, err := r.Render(Recipient{Email: "eve@example.org", Fields: f})
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), "control character") {
			t.Errorf("%s %q: got %v, want a control character error on %s", tc.column, tc.value, err, tc.field)
		}
	}
	f := eveFields("x9")
	f["note"] = "a\tb"
	if m, err := r.Render(Recipient{Email: "eve@example.org", Fields: f}); err != nil || m.Subject != "Eve, what's new a b" {
		t.Errorf("a tab: got %v, %v; want the subject with a space", m, err)
	}
}

// eveFields are the columns of injectConfig for a plain Eve with id.
func eveFields(id string) map[string]string {
	return map[string]string{"first_name": "Eve", "last_name": "Bad", "id": id, "note": "today"}
}

// pythonOrSkip is python without the skip: the Go half of a test still runs.
func pythonOrSkip(t *testing.T) (string, error) {
	t.Helper()
	var py string
	ok := t.Run("python3", func(t *testing.T) { py = python(t) })
	if !ok || py == "" {
		return "", errors.New("no python3")
	}
	return py, nil
}

// TestEncodeTextAsMime pins encodeText to mime.QEncoding for the values
// go-mail encoded before (not printable ASCII): the words of every golden
// message stay byte for byte the same.
func TestEncodeTextAsMime(t *testing.T) {
	for _, v := range []string{
		"Zoë, Neuigkeiten im November – Ausgabe 42",
		strings.Repeat("é", 100),
		strings.Repeat("a_b=c?d ", 20) + "ü",
		"tab\there \x01 and \x7f",
		"日本語のメールの件名はとても長くなることがあります、そしてそれは分割されなければなりません",
	} {
		if got, want := encodeText(v, maxEncodedWord), mime.QEncoding.Encode("UTF-8", v); got != want {
			t.Errorf("encodeText(%q):\n got %q\nwant %q", v, got, want)
		}
	}
	for _, v := range []string{"", "Team news 42", "a =? b", "?= then =?", "november-42"} {
		if got := encodeText(v, 0); got != v {
			t.Errorf("encodeText(%q): got %q, want it as it is", v, got)
		}
	}
}

// TestEncodedWordsFit checks the RFC 2047 section 2 limit of 75 octets a
// word, that the first word fits the room on the first line when one
// character does (a display name that fits one word may take it whole,
// see encodeRun), and that Go decodes every form back to the value.
func TestEncodedWordsFit(t *testing.T) {
	dec := new(mime.WordDecoder)
	for _, v := range []string{
		issue14Word, strings.Repeat(issue14Word, 5), strings.Repeat("ü", 200), strings.Repeat("日本", 50) + issue14Word,
		"a" + strings.Repeat("\U0001F600", 30), "\U0001F600 x", "Zoë Ünïcødé-Ölçek",
	} {
		for _, room := range []int{maxEncodedWord, firstRoom("Subject"), firstRoom("Reply-To"), 30, 0} {
			for i, enc := range []string{encodeText(v, room), bWords(phraseB, v, room), encodePhrase(v, room)} {
				words := strings.Split(enc, " ")
				for _, w := range words {
					if strings.HasPrefix(w, "=?") && len(w) > maxEncodedWord {
						t.Errorf("room %d: word of %d octets: %s", room, len(w), w)
					}
				}
				// Text and B words: the first word fits, or holds one
				// character.
				if first, _ := dec.DecodeHeader(words[0]); i < 2 && len(words[0]) > room && utf8.RuneCountInString(first) > 1 {
					t.Errorf("room %d: first word of %d octets holds %q", room, len(words[0]), first)
				}
				if got, err := dec.DecodeHeader(enc); err != nil || got != v {
					t.Errorf("room %d: decode %q: got %q, %v; want %q", room, enc, got, err, v)
				}
			}
		}
	}
}
