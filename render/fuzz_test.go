package render

import (
	"bytes"
	"errors"
	"net/mail"
	"slices"
	"strings"
	"testing"
	ttemplate "text/template"
	"unicode/utf8"
)

// FuzzHeaderValue puts one CSV value into every header position: the
// display name, the subject, an extra header and the List-Unsubscribe URL.
// Either the row is refused with a FieldError for one of those fields, or
// the message's header block parses and holds exactly the expected fields,
// once each: no value can inject a header. Decoded by net/mail and by
// mime.WordDecoder.DecodeHeader run over every field, no field holds CR,
// LF or NUL, and Subject, the display name and the extra header decode to
// exactly the rendered values: a value that looks like an RFC 2047
// encoded-word is encoded, never passed through (the class of
// CVE-2024-6923; seeds under testdata/fuzz hold issue 14's). Every field
// starts its value on its first line, and lines pass 78 octets only when
// no blank allows a fold (checkHeaderLines).
func FuzzHeaderValue(f *testing.F) {
	for _, s := range []string{"Zoë", "a\r\nBcc: x@evil.example", "=?utf-8?q?x?=", "\"quoted\" <x@y>", strings.Repeat("é ", 60), issue14Word} {
		f.Add(s)
	}
	cfg := Config{
		Dir: "testdata/campaign", From: "news@acme.example", Subject: "S {{.v}}", Name: "{{.v}}",
		HTML: "group.html", Headers: map[string]string{"X-V": "{{.v}}"},
		Unsubscribe: Unsubscribe{URL: "https://acme.example/u/{{.v}}"},
		Vars:        map[string]any{"issue": 1}, Now: fixedNow, MessageID: func() string { return "m@acme.example" },
	}
	r := newRenderer(f, cfg)
	want := []string{"Content-Type", "Date", "From", "List-Unsubscribe", "List-Unsubscribe-Post", "Message-Id", "Mime-Version", "Subject", "To", "X-V"}
	f.Fuzz(func(t *testing.T, v string) {
		m, err := r.Render(Recipient{Email: "zoe@example.org", Fields: map[string]string{"v": v}})
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || (fe.Field != "name" && fe.Field != "subject" && fe.Field != "header X-V" && fe.Field != "unsubscribe") {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		head := m.Data[:bytes.Index(m.Data, []byte("\r\n\r\n"))+4]
		checkHeaderLines(t, m.Data)
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatalf("parse: %v\n%s", err, head)
		}
		var keys []string
		for k, vals := range msg.Header {
			if len(vals) != 1 {
				t.Errorf("%s appears %d times", k, len(vals))
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, want) {
			t.Fatalf("header fields: got %v, want %v\n%s", keys, want, head)
		}
		d := decodeGo(t, m.Data)
		checkNoBreaks(t, "Go", d)
		checkNoLeadingBlank(t, "Go", d)
		value := oneLine(v)
		if m.Subject != oneLine("S "+v) {
			t.Fatalf("Message.Subject: got %q, want %q", m.Subject, oneLine("S "+v))
		}
		if got, _ := d.value("Subject"); got != m.Subject {
			t.Fatalf("subject: got %q, want %q\n%s", got, m.Subject, head)
		}
		if got, _ := d.value("X-V"); got != value {
			t.Fatalf("X-V: got %q, want %q\n%s", got, value, head)
		}
		to := d.Addrs["To"]
		if len(to) != 1 || to[0] != [2]string{value, "zoe@example.org"} {
			t.Fatalf("To: got %q, want %q <zoe@example.org>\n%s", to, value, head)
		}
	})
}

// FuzzMarkdownValue puts one CSV value into Markdown text, emphasis and a raw
// HTML block; the rendered HTML must have the same tags as with a plain word,
// so a value never creates a tag, link or image of its own.
func FuzzMarkdownValue(f *testing.F) {
	for _, s := range []string{"[x](javascript:alert(1))", "<script>", "**b**", "![i](http://evil)", "www.evil.example", "a@b.example", " \u00a0x"} {
		f.Add(s)
	}
	r := markdownRenderer(f, "Hello {{.v}}!\n\n*{{.v}}*\n\n<div>{{.v}}</div>\n\n- {{.v}}\n")
	tagsOf := func(t *testing.T, v string) []string {
		out, _ := renderValue(t, r, v)
		var tags []string
		for i := 0; ; {
			tg, ok := nextTag(out, i)
			if !ok {
				break
			}
			i = tg.end
			name := tg.name
			if tg.closing {
				name = "/" + name
			}
			tags = append(tags, name)
		}
		if strings.Contains(out, "href") || strings.Contains(out, "src=") {
			t.Fatalf("value %q made a link or image:\n%s", v, out)
		}
		return tags
	}
	f.Fuzz(func(t *testing.T, v string) {
		if !utf8.ValidString(v) {
			return // CSV values are UTF-8 (the campaign reader checks)
		}
		ref := "x"
		if strings.TrimSpace(mdEscape(v)) == "" {
			ref = ""
		}
		got, want := tagsOf(t, v), tagsOf(t, ref)
		if !slices.Equal(got, want) {
			out, _ := renderValue(t, r, v)
			t.Fatalf("value %q: tags %v, want %v\n%s", v, got, want, out)
		}
	})
}

// FuzzTemplateErrors parses and runs any template source as a subject:
// columnHint keeps the parser's error in the chain and adds a hint only
// where the source reads a name with a space or hyphen; a run that fails
// for a column names one the row lacks, and every failure is a
// *FieldError of the join.
func FuzzTemplateErrors(f *testing.F) {
	for _, s := range []string{"{{.First Name}}", "{{.e-mail}}", "{{.firstname}}", "{{.Vars.x}}", "{{if .a b}}{{end}}",
		"{{.a}}{{.b}}{{.c}}", "{{index . \"First Name\"}}", "{{with .Vars}}{{.y}}{{end}}", "{{uper .x}}"} {
		f.Add(s)
	}
	fields := map[string]string{"email": "ann@example.org", "first_name": "Ann", "First Name": "Ann"}
	f.Fuzz(func(t *testing.T, src string) {
		tt, perr := ttemplate.New("s").Option("missingkey=error").Parse(src)
		hinted := columnHint(perr, src)
		if perr == nil {
			if hinted != nil {
				t.Fatalf("columnHint made %v of no error", hinted)
			}
		} else if !errors.Is(hinted, perr) {
			t.Fatalf("columnHint(%v) = %v lost the parser's error", perr, hinted)
		} else if hinted != perr && !strings.Contains(hinted.Error(), "{{index . ") {
			t.Fatalf("columnHint(%v) = %v", perr, hinted)
		}
		if perr != nil {
			return
		}
		data := map[string]any{"Vars": map[string]any{"x": 1}}
		for k, v := range fields {
			data[k] = v
		}
		_, err := execText(tt, data)
		if err == nil {
			return
		}
		errs := fieldErrors{fields: fields}
		errs.add("subject", err)
		for _, e := range errs.list {
			var mk *MissingKeyError
			if errors.As(e, &mk) {
				if _, ok := fields[mk.Key]; ok {
					t.Fatalf("%v: the row has column %q", e, mk.Key)
				}
			}
		}
		if len(errs.list) > maxMissing {
			t.Fatalf("%d errors, want at most %d", len(errs.list), maxMissing)
		}
	})
}
