package render

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	ttemplate "text/template"
)

// tempCampaign writes files into a fresh folder and returns it.
func tempCampaign(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(c *Config)
		want []string // substrings of the error
	}{
		{"template syntax names file and line", func(c *Config) {
			c.Dir = tempCampaign(t, map[string]string{"body.md": "a\n\n{{.x"})
			c.Layout = ""
			c.Attachments = nil
		},
			[]string{"body: ", "body.md:3"}},
		{"subject syntax", func(c *Config) { c.Subject = "{{if}}" }, []string{"subject: template: subject:1"}},
		{"missing body file", func(c *Config) { c.Markdown = "nope.md" }, []string{"body: ", "nope.md"}},
		{"markdown and html", func(c *Config) { c.HTML = "body.html" }, []string{"not both"}},
		{"no body", func(c *Config) { c.Markdown = "" }, []string{"body: markdown or html is required"}},
		{"body outside folder", func(c *Config) { c.Markdown = "../render.go" }, []string{"leaves the campaign folder"}},
		{"layout missing", func(c *Config) { c.Layout = "nope.html" }, []string{"layout: ", "nope.html"}},
		{"static attachment missing", func(c *Config) { c.Attachments = []string{"gone.pdf"} }, []string{"attachment gone.pdf", "gone.pdf"}},
		{"static attachment absolute", func(c *Config) { c.Attachments = []string{"/etc/passwd"} }, []string{"absolute"}},
		{"bad header name", func(c *Config) { c.Headers = map[string]string{"X Bad": "v"} }, []string{"header X Bad", "invalid character"}},
		{"header name with colon", func(c *Config) { c.Headers = map[string]string{"X-A:B": "v"} }, []string{"invalid character"}},
		{"override Subject", func(c *Config) { c.Headers = map[string]string{"subject": "v"} }, []string{"cannot be overridden"}},
		{"override Content-Type", func(c *Config) { c.Headers = map[string]string{"Content-Type": "text/plain"} }, []string{"cannot be overridden"}},
		{"override Message-ID", func(c *Config) { c.Headers = map[string]string{"Message-Id": "x"} }, []string{"cannot be overridden"}},
		{"bad from", func(c *Config) { c.From = "not an address" }, []string{"from"}},
		{"several authors need sender", func(c *Config) { c.From = "a@acme.example, b@acme.example" }, []string{"sender: required", "3.6.2"}},
		{"bad sender", func(c *Config) { c.From = "a@acme.example, b@acme.example"; c.Sender = "x" }, []string{"sender"}},
		{"mailto without url", func(c *Config) { c.Unsubscribe = Unsubscribe{Mailto: "u@acme.example"} }, []string{"unsubscribe"}},
		{"dkim without key", func(c *Config) { c.DKIM = &DKIM{Domain: "acme.example", Selector: "s"} }, []string{"dkim: no private key"}},
		{"dkim without From", func(c *Config) {
			c.DKIM = &DKIM{Domain: "acme.example", Selector: "s", Signer: loadKey("dkim-ed25519.pem"), Headers: []string{"To"}}
		}, []string{"dkim: headers must include From"}},
		{"dkim bad header name", func(c *Config) {
			c.DKIM = &DKIM{Domain: "acme.example", Selector: "s", Signer: loadKey("dkim-ed25519.pem"), Headers: []string{"From", "X Y"}}
		}, []string{`dkim: header name "X Y": invalid character`}},
		{"dkim weak RSA", func(c *Config) {
			blk, _ := pem.Decode(readPEM(t, "dkim-rsa512.pem"))
			k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			c.DKIM = &DKIM{Domain: "acme.example", Selector: "s", Signer: k}
		}, []string{"dkim: RSA key of 512 bits is too weak", "RFC 8301"}},
		{"dkim ECDSA", func(c *Config) {
			k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			c.DKIM = &DKIM{Domain: "acme.example", Selector: "s", Signer: k}
		}, []string{"dkim: ECDSA keys cannot sign DKIM"}},
		{"dkim nil RSA key", func(c *Config) {
			c.DKIM = &DKIM{Domain: "acme.example", Selector: "s", Signer: (*rsa.PrivateKey)(nil)}
		}, []string{"dkim: no private key"}},
		{"missing folder", func(c *Config) { c.Dir = "testdata/nope" }, []string{"campaign folder"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			tc.cfg(&cfg)
			r, err := New(cfg)
			if err == nil {
				r.Close()
				t.Fatalf("New: got nil error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("New error: got %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	symDir := tempCampaign(t, map[string]string{"body.html": "<p>hi</p>"})
	if err := os.Symlink("/etc/passwd", filepath.Join(symDir, "passwd.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..", filepath.Join(symDir, "up")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		cfg    func(c *Config)
		fields map[string]string // merged into zoe's fields; "" deletes
		email  string
		field  string
		want   []string
	}{
		{"missing column in subject", func(c *Config) { c.Subject = "Hi {{.nickname}}" }, nil, "", "subject",
			[]string{`subject: subject:1: no column "nickname"; columns: amount, due, email, first_name, id, invoice, last_name, plan`}},
		{"missing column in markdown", nil, map[string]string{"plan": ""}, "", "body",
			[]string{`body: body.md:6: no column "plan"; columns: `}},
		{"missing column in layout", nil, map[string]string{"id": ""}, "", "layout",
			[]string{`layout: layout.html:5: no column "id"; columns: `}},
		{"missing column in name", nil, map[string]string{"last_name": ""}, "", "name", []string{`name: name:1: no column "last_name"`}},
		{"missing var", func(c *Config) { c.Subject = "{{.Vars.nope}}" }, nil, "", "subject", []string{`"nope"`}},
		{"CRLF in subject", func(c *Config) { c.Name = "" }, map[string]string{"first_name": "Zoë\r\nBcc: evil@example.org"}, "", "subject", []string{"CR, LF or NUL"}},
		{"LF in name", nil, map[string]string{"last_name": "X\nBcc: evil@example.org"}, "", "name", []string{"CR, LF or NUL"}},
		{"NUL in subject", func(c *Config) { c.Name = "" }, map[string]string{"first_name": "a\x00b"}, "", "subject", []string{"CR, LF or NUL"}},
		{"CR in extra header", func(c *Config) { c.Headers = map[string]string{"X-Ref": "{{.id}}"} },
			map[string]string{"id": "a\rX-Injected: 1"}, "", "header X-Ref", []string{"CR, LF or NUL"}},
		{"header word too long", func(c *Config) { c.Headers = map[string]string{"X-Ref": "{{.id}}"} },
			map[string]string{"id": strings.Repeat("a", 1000)}, "", "header X-Ref", []string{"too long"}},
		{"attachment with ..", func(c *Config) { c.Attachments = []string{"{{.invoice}}"} },
			map[string]string{"invoice": "../render.go"}, "", "attachment", []string{"leaves the campaign folder"}},
		{"attachment with inner ..", func(c *Config) { c.Attachments = []string{"invoices/{{.invoice}}"} },
			map[string]string{"invoice": "../logo.png"}, "", "attachment", []string{"leaves the campaign folder"}},
		{"attachment absolute", func(c *Config) { c.Attachments = []string{"{{.invoice}}"} },
			map[string]string{"invoice": "/etc/passwd"}, "", "attachment", []string{"absolute"}},
		{"attachment symlink out", func(c *Config) {
			c.Dir, c.Markdown, c.Layout, c.HTML = symDir, "", "", "body.html"
			c.Attachments = []string{"{{.invoice}}"}
		}, map[string]string{"invoice": "passwd.txt"}, "", "attachment", []string{"passwd.txt"}},
		{"attachment through symlinked dir", func(c *Config) {
			c.Dir, c.Markdown, c.Layout, c.HTML = symDir, "", "", "body.html"
			c.Attachments = []string{"up/{{.invoice}}"}
		}, map[string]string{"invoice": "x"}, "", "attachment", []string{"up/x"}},
		{"attachment missing", func(c *Config) { c.Attachments = []string{"invoices/{{.invoice}}.pdf"} },
			map[string]string{"invoice": "A-999"}, "", "attachment", []string{"invoices/A-999.pdf", "no such file"}},
		{"attachment is a folder", func(c *Config) { c.Attachments = []string{"{{.invoice}}"} },
			map[string]string{"invoice": "invoices"}, "", "attachment", []string{"not a regular file"}},
		{"missing image in body", func(c *Config) {
			c.Dir = tempCampaign(t, map[string]string{"b.html": `<p>x</p><IMG alt="a" SRC='missing.png'>`})
			c.Markdown, c.Layout, c.HTML, c.Attachments = "", "", "b.html", nil
		}, nil, "", "body", []string{"b.html", "missing.png"}},
		{"missing image in layout", func(c *Config) {
			c.Dir = tempCampaign(t, map[string]string{"b.md": "hi", "l.html": `{{.Body}}<img src="gone.gif">`})
			c.Markdown, c.Layout, c.Attachments = "b.md", "l.html", nil
		}, nil, "", "layout", []string{"l.html", "gone.gif"}},
		{"image outside folder", func(c *Config) {
			c.Dir = tempCampaign(t, map[string]string{"b.md": "![x](../logo.png)"})
			c.Markdown, c.Layout, c.Attachments = "b.md", "", nil
		}, nil, "", "body", []string{"b.md", "leaves the campaign folder"}},
		{"bad address", nil, nil, "not an address", "address", []string{"not an address"}},
		{"address with brackets", nil, nil, "<zoe@example.org>", "address", []string{"bare address"}},
		{"address with CRLF", nil, nil, "zoe@example.org\r\nBcc: x@y", "address", []string{"CR or LF"}},
		{"unsubscribe CRLF", func(c *Config) { c.Unsubscribe = Unsubscribe{URL: "https://acme.example/u/{{.id}}"} },
			map[string]string{"id": "1\r\nX-Injected: yes"}, "", "unsubscribe", []string{"CR, LF or NUL"}},
		{"unsubscribe blank in the template", func(c *Config) {
			c.Unsubscribe = Unsubscribe{URL: "https://acme.example/u/{{.Vars.x}}"}
			c.Vars = map[string]any{"x": "a b"}
		},
			nil, "", "unsubscribe", []string{"blank"}},
		{"unsubscribe angle bracket in the template", func(c *Config) {
			c.Unsubscribe = Unsubscribe{URL: "https://acme.example/u/{{.Vars.x}}"}
			c.Vars = map[string]any{"x": "a>,<https://evil"}
		}, nil, "", "unsubscribe", []string{"contains"}},
		{"unsubscribe http", func(c *Config) { c.Unsubscribe = Unsubscribe{URL: "{{.id}}"} },
			map[string]string{"id": "http://acme.example/u"}, "", "unsubscribe", []string{"https"}},
		{"unsubscribe mailto CRLF", func(c *Config) {
			c.Unsubscribe = Unsubscribe{URL: "https://acme.example/u", Mailto: "u@acme.example?subject={{.id}}"}
		}, map[string]string{"id": "x\nBcc: y"}, "", "unsubscribe", []string{"CR, LF or NUL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			r := newRenderer(t, cfg)
			rc := zoe()
			rc.Fields = maps.Clone(rc.Fields)
			for k, v := range tc.fields {
				if v == "" {
					delete(rc.Fields, k)
				} else {
					rc.Fields[k] = v
				}
			}
			if tc.email != "" {
				rc.Email = tc.email
			}
			m, err := r.Render(rc)
			if err == nil {
				t.Fatalf("Render: got a message, want a %s error\n%s", tc.field, m.Data)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Render error %q is %T, want *FieldError", err, err)
			}
			if fe.Field != tc.field {
				t.Errorf("field: got %q, want %q (error %q)", fe.Field, tc.field, err)
			}
			if !strings.HasPrefix(err.Error(), tc.field+": ") {
				t.Errorf("error %q does not start with %q", err, tc.field+": ")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error: got %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestGroupNeedsVarsOnly(t *testing.T) {
	r := newRenderer(t, baseConfig())
	_, err := r.RenderGroup([]string{"ann@example.org"})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "subject" || !strings.Contains(err.Error(), `"first_name"`) {
		t.Fatalf("got %v, want a subject error about first_name (group data has only .Vars)", err)
	}
	if _, err := r.RenderGroup(nil); err == nil {
		t.Errorf("RenderGroup(nil): got nil error")
	}
	if _, err := r.RenderGroup([]string{"ann@example.org", "bad"}); err == nil || !strings.HasPrefix(err.Error(), "address: ") {
		t.Errorf("RenderGroup with a bad address: got %v, want an address error", err)
	}
}

func TestFieldErrorUnwrap(t *testing.T) {
	cause := errors.New("boom")
	err := error(&FieldError{Field: "header X-A", Err: cause})
	if err.Error() != "header X-A: boom" || !errors.Is(err, cause) {
		t.Errorf("got %q, Is=%v", err, errors.Is(err, cause))
	}
}

// fieldsOf returns the Field of each *FieldError joined in err, in order.
func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %q (%T) is not a join", err, err)
	}
	var fields []string
	for _, e := range j.Unwrap() {
		fe, ok := e.(*FieldError)
		if !ok {
			t.Fatalf("part %q of the join is %T, want *FieldError", e, e)
		}
		fields = append(fields, fe.Field)
	}
	return fields
}

// One run shows every problem of a row: each part is rendered on its own
// and each failure is one *FieldError of the join, in a fixed order; a
// template that reads several missing columns fails once for each.
func TestRenderReportsEveryProblem(t *testing.T) {
	cfg := baseConfig()
	cfg.Dir = tempCampaign(t, map[string]string{
		"b.md":   "Hi {{.firstname}} {{.lastname}}\n\n{{.firstname}} ![x](missing.png)",
		"l.html": `{{.Body}} {{.idd}}`,
		"t.txt":  "{{.nick}}",
		"a.pdf":  "%PDF",
	})
	cfg.Markdown, cfg.Layout, cfg.Text = "b.md", "l.html", "t.txt"
	cfg.Subject, cfg.Name = "{{.nickname}}", "{{.first}}"
	cfg.Headers = map[string]string{"X-B": "{{.ref}}", "X-A": "ok", "X-C": "{{.ref2}}"}
	cfg.Attachments = []string{"a.pdf", "{{.invoice}}.pdf", "gone/{{.invoice}}.pdf"}
	cfg.Unsubscribe = Unsubscribe{URL: "https://acme.example/u/{{.uid}}", Mailto: "u@acme.example?subject={{.id}}"}
	r := newRenderer(t, cfg)
	rc := zoe()
	rc.Email = "not an address"
	_, err := r.Render(rc)
	if err == nil {
		t.Fatal("Render: got nil error")
	}
	want := []string{"address", "name", "unsubscribe", "subject", "header X-B", "header X-C", "body", "body", "layout", "text", "attachment", "attachment"}
	if got := fieldsOf(t, err); !slices.Equal(got, want) {
		t.Fatalf("fields: got %q, want %q\n%v", got, want, err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "address" {
		t.Errorf("errors.As: got %v, want the first failure, the address", fe)
	}
	if !strings.HasPrefix(err.Error(), "address: ") || strings.Count(err.Error(), "\n") != len(want)-1 {
		t.Errorf("error text: got %q, want one line per failure, the address first", err)
	}
	for _, w := range []string{`name: name:1: no column "first"`, `subject: subject:1: no column "nickname"`,
		`header X-B: header X-B:1: no column "ref"`, `body: b.md:1: no column "firstname"`, `body: b.md:1: no column "lastname"; columns: amount, due, email, first_name, id, invoice, last_name, plan; did you mean "last_name"?`, `layout: l.html:1: no column "idd"; `,
		`text: t.txt:1: no column "nick"`, `attachment: A-100.pdf: no such file`, "attachment: gone/A-100.pdf"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error: got\n%v\nwant it to contain %q", err, w)
		}
	}

	// A row with one problem has a join of one.
	cfg.Dir = "testdata/campaign"
	cfg.Markdown, cfg.Layout, cfg.Text, cfg.Attachments, cfg.Headers, cfg.Unsubscribe = "body.md", "", "", nil, nil, Unsubscribe{}
	cfg.Name = ""
	_, err = newRenderer(t, cfg).Render(zoe())
	if got := fieldsOf(t, err); !slices.Equal(got, []string{"subject"}) {
		t.Errorf("fields: got %q, want [subject]", got)
	}
}

// A body that fails still lets the layout and the text show theirs, and
// a group message lists each bad address.
func TestGroupReportsEveryProblem(t *testing.T) {
	cfg := baseConfig()
	cfg.Subject = "{{.Vars.nope}}"
	r := newRenderer(t, cfg)
	_, err := r.RenderGroup([]string{"bad", "ann@example.org", "also bad"})
	want := []string{"address", "address", "subject", "body", "body", "layout", "layout"}
	if got := fieldsOf(t, err); !slices.Equal(got, want) {
		t.Fatalf("fields: got %q, want %q\n%v", got, want, err)
	}
	var mk *MissingKeyError
	if !errors.As(err, &mk) || mk.Key != "first_name" || len(mk.Columns) != 0 {
		t.Fatalf("got %#v, want a MissingKeyError for first_name with no columns", mk)
	}
	if !strings.Contains(err.Error(), `body: body.md:3: no column "first_name"; the message has no columns, only .Vars`) {
		t.Errorf("error: got\n%v\nwant the group's missing column", err)
	}
	if strings.Contains(err.Error(), `subject: subject:1: no column`) || !strings.Contains(err.Error(), `map has no entry for key "nope"`) {
		t.Errorf("error: got\n%v\nwant .Vars.nope as text/template says it, not a column", err)
	}
}

// A missing column names the columns the row has and the one meant.
func TestMissingKeyError(t *testing.T) {
	cfg := baseConfig()
	cfg.Dir = tempCampaign(t, map[string]string{"b.md": "Hi\n{{.firstname}}", "b.html": "<p>{{.Emial}}</p>"})
	cfg.Markdown, cfg.Layout, cfg.Attachments, cfg.Name, cfg.Subject = "b.md", "", nil, "", "Hi"
	r := newRenderer(t, cfg)
	rc := Recipient{Row: 2, Email: "ann@example.org", Fields: map[string]string{"plan": "Pro", "email": "ann@example.org", "first_name": "Ann"}}
	_, err := r.Render(rc)
	const want = `body: b.md:2: no column "firstname"; columns: email, first_name, plan; did you mean "first_name"?`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	var mk *MissingKeyError
	if !errors.As(err, &mk) {
		t.Fatalf("got %T, want a *MissingKeyError cause", err)
	}
	if mk.Key != "firstname" || mk.Suggest != "first_name" || mk.Template != "b.md" || mk.Line != 2 ||
		!slices.Equal(mk.Columns, []string{"email", "first_name", "plan"}) {
		t.Errorf("got %+v", mk)
	}
	var ee ttemplate.ExecError
	if !errors.As(err, &ee) {
		t.Errorf("text/template's ExecError is not in the chain")
	}
	// Every row with the same columns gets the same text, so a caller can
	// group the rows.
	rc.Row, rc.Fields["first_name"] = 3, "Bob"
	if _, err2 := r.Render(rc); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("second row: got %v, want the same text", err2)
	}

	cfg.Markdown, cfg.HTML = "", "b.html"
	_, err = newRenderer(t, cfg).Render(rc)
	if err == nil || !strings.HasSuffix(err.Error(), `did you mean "email"?`) {
		t.Errorf("html body: got %v, want a suggestion of email", err)
	}

	for _, tc := range []struct {
		key     string
		cols    []string
		suggest string
		text    string
	}{
		{"firstname", []string{"email", "first_name", "plan"}, "first_name", `did you mean "first_name"?`},
		{"Email", []string{"email", "name"}, "email", `did you mean "email"?`},
		{"emial", []string{"email", "name"}, "email", ""},
		{"mail", []string{"email"}, "email", ""},
		{"last_name", []string{"email", "first_name"}, "", "columns: email, first_name"},
		{"x", []string{"email", "first_name"}, "", ""},
		{"id", []string{"ip", "email"}, "ip", ""},
		{"FirstName", []string{"Email Address", "First Name"}, "First Name", `did you mean {{index . "First Name"}}?`},
		{"nickname", nil, "", `no column "nickname"; the message has no columns, only .Vars`},
	} {
		e := &MissingKeyError{Key: tc.key, Columns: tc.cols, Suggest: suggest(tc.key, tc.cols)}
		if e.Suggest != tc.suggest {
			t.Errorf("suggest(%q, %q): got %q, want %q", tc.key, tc.cols, e.Suggest, tc.suggest)
		}
		if !strings.Contains(e.Error(), tc.text) {
			t.Errorf("%q: got %q, want it to contain %q", tc.key, e.Error(), tc.text)
		}
	}
	many := make([]string, 40)
	for i := range many {
		many[i] = fmt.Sprintf("c%02d", i)
	}
	if got := (&MissingKeyError{Key: "k", Columns: many}).Error(); !strings.HasSuffix(got, "c29, ... (10 more)") {
		t.Errorf("40 columns: got %q, want the first 30 and the count of the rest", got)
	}
}

// TestMissingKeyWording pins the text/template wording missingKey reads:
// if a Go release changes it, this fails rather than MissingKeyError
// silently disappearing.
func TestMissingKeyWording(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		html      bool
		key, tmpl string
		line      int
		ok        bool
	}{
		{"text", "a\n\n{{.firstname}}", false, "firstname", "body.md", 3, true},
		{"html", "<p>\n{{.firstname}}</p>", true, "firstname", "body.md", 2, true},
		{"html attribute", `<a href="{{.x}}">`, true, "x", "body.md", 1, true},
		{"pipeline", "{{.firstname | printf `%s`}}", false, "firstname", "body.md", 1, true},
		{"if", "{{if .firstname}}x{{end}}", false, "firstname", "body.md", 1, true},
		{"defined template", "{{define `x`}}\n{{.foo}}{{end}}{{template `x` .}}", false, "foo", "body.md", 2, true},
		{"long name", "{{.a_very_long_column_name_that_goes_on_and_on}}", false, "a_very_long_column_name_that_goes_on_and_on", "body.md", 1, true},
		{"a var", "{{.Vars.nope}}", false, "", "", 0, false},
		{"a var through with", "{{with .Vars}}{{.nope}}{{end}}", false, "nope", "body.md", 1, true},
		{"not a map", "{{.first_name.x}}", false, "", "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := map[string]any{"first_name": "Ann", "Vars": map[string]any{"issue": 1}}
			var err error
			if tc.html {
				h, perr := parseHTML("body.md", tc.src)
				if perr != nil {
					t.Fatal(perr)
				}
				err = h.Execute(io.Discard, data)
			} else {
				tt, perr := parseText("body.md", tc.src)
				if perr != nil {
					t.Fatal(perr)
				}
				err = tt.Execute(io.Discard, data)
			}
			if err == nil {
				t.Fatal("Execute: got nil error")
			}
			key, tmpl, line, ok := missingKey(err)
			if key != tc.key || tmpl != tc.tmpl || line != tc.line || ok != tc.ok {
				t.Errorf("missingKey(%q): got %q, %q, %d, %v; want %q, %q, %d, %v", err, key, tmpl, line, ok, tc.key, tc.tmpl, tc.line, tc.ok)
			}
		})
	}
	if _, _, _, ok := missingKey(errors.New(`map has no entry for key "x"`)); ok {
		t.Error("missingKey: a plain error with the words is not text/template's")
	}
}

// A column name with a space or a hyphen fails to parse; the error shows
// how to write it, and that form works. The parser's wording is pinned
// here: a Go release that changes it fails this test.
func TestColumnHint(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"space", "Hi\n{{.First Name}}", `template: body.md:2: function "Name" not defined; column names with spaces are written {{index . "First Name"}}`},
		{"space in if", "{{if .First Name}}x{{end}}", `{{index . "First Name"}}`},
		{"trim marker", "{{ .First Name -}}", `{{index . "First Name"}}`},
		{"pipeline", "{{.First Middle Name | printf `%s`}}", `function "Middle" not defined; column names with spaces are written {{index . "First Middle Name"}}`},
		{"unicode", "{{.x}}{{.Straße Nr}}", `{{index . "Straße Nr"}}`},
		{"hyphen", "{{.e-mail}}", `template: body.md:1: bad character U+002D '-'; column names with hyphens are written {{index . "e-mail"}}`},
		{"a function typo", "{{uper .x}}", `template: body.md:1: function "uper" not defined`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, html := range []bool{false, true} {
				var err error
				if html {
					_, err = parseHTML("body.md", tc.src)
				} else {
					_, err = parseText("body.md", tc.src)
				}
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("html=%v: got %v, want it to contain %s", html, err, tc.want)
				}
				if tc.name == "a function typo" && strings.Contains(err.Error(), "index") {
					t.Errorf("html=%v: got %v, want no hint", html, err)
				}
			}
		})
	}

	// The error reaches the user from New, and the form it shows renders.
	cfg := baseConfig()
	cfg.Subject = "Hi {{.First Name}}"
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), `subject: template: subject:1: function "Name" not defined; column names with spaces are written {{index . "First Name"}}`) {
		t.Errorf("New: got %v", err)
	}
	cfg.Subject = `Hi {{index . "First Name"}}`
	cfg.Name = ""
	rc := zoe()
	rc.Fields = maps.Clone(rc.Fields)
	rc.Fields["First Name"] = "Zoë"
	m, err := newRenderer(t, cfg).Render(rc)
	if err != nil || m.Subject != "Hi Zoë" {
		t.Errorf("got %v, %v; want the subject Hi Zoë", m, err)
	}
}

// execText names every missing column of a template, up to maxMissing,
// and no error that only the empty value it puts in for one causes.
func TestExecTextFindsEveryMissingColumn(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		keys      []string
	}{
		{"three", "{{.a}} {{.ok}} {{.b}}\n{{.a}} {{.c}}", []string{"a", "b", "c"}},
		{"bounded", "{{.k0}}{{.k1}}{{.k2}}{{.k3}}{{.k4}}{{.k5}}{{.k6}}{{.k7}}{{.k8}}{{.k9}}{{.k10}}{{.k11}}",
			[]string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"}},
		{"caused by the empty value", "{{index .a 1}} {{.b}}", []string{"a"}},
		{"a var after", "{{.a}} {{.Vars.nope}}", []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt, err := parseText("t", tc.src)
			if err != nil {
				t.Fatal(err)
			}
			_, err = execText(tt, map[string]any{"ok": "yes", "Vars": map[string]any{}})
			var errs fieldErrors
			errs.add("body", err)
			var keys []string
			for _, e := range errs.list {
				var mk *MissingKeyError
				if !errors.As(e, &mk) {
					t.Fatalf("%v is not a MissingKeyError", e)
				}
				keys = append(keys, mk.Key)
			}
			if !slices.Equal(keys, tc.keys) {
				t.Errorf("got %q, want %q", keys, tc.keys)
			}
		})
	}
}
