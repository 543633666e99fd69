package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestTemplateFilesMustBeUTF8 is issue 14's Latin-1 "é" in body.md, and
// the same in every other template file: New refuses the file with its
// line, as a *FieldError whose Field the caller maps to the campaign key.
func TestTemplateFilesMustBeUTF8(t *testing.T) {
	const latin1 = "# Hello\n\nCaf\xe9 au lait for {{.first_name}}\n"
	const bad = ": invalid UTF-8 (byte 0xE9; the file must be saved as UTF-8)"
	for _, tc := range []struct {
		name      string
		files     map[string]string
		cfg       func(*Config)
		field     string
		wantError string // "" for none
	}{
		{"body.md, line 3", map[string]string{"body.md": latin1}, nil, "body", "body.md:3" + bad},
		{"body.html, line 1", map[string]string{"body.html": "<p>Caf\xe9</p>"}, func(c *Config) { c.Markdown, c.HTML = "", "body.html" },
			"body", "body.html:1" + bad},
		{"body.txt, last line without newline", map[string]string{"body.txt": "a\nb\r\nc\xff"}, func(c *Config) { c.Text = "body.txt" },
			"text", "body.txt:3: invalid UTF-8 (byte 0xFF; the file must be saved as UTF-8)"},
		{"layout.html", map[string]string{"layout.html": "<html>\n<body>\n\n\n{{.Body}} \xe9</body></html>"}, func(c *Config) { c.Layout = "layout.html" },
			"layout", "layout.html:5" + bad},
		{"cut UTF-8 sequence", map[string]string{"body.md": "ok\n\xc3"}, nil, "body", "body.md:2: invalid UTF-8 (byte 0xC3;"},
		{"UTF-16 byte order mark", map[string]string{"body.md": "\xff\xfeH\x00i\x00"}, nil, "body", "body.md:1: invalid UTF-8 (byte 0xFF;"},
		{"UTF-8 with U+FFFD", map[string]string{"body.md": "Café \ufffd {{.first_name}}\n"}, nil, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"body.md": "Hello {{.first_name}}\n"}
			for k, v := range tc.files {
				files[k] = v
			}
			cfg := Config{Dir: tempCampaign(t, files), From: "news@acme.example", Subject: "s", Markdown: "body.md", Now: fixedNow}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			r, err := New(cfg)
			if tc.wantError == "" {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				defer r.Close()
				checkUTF8Body(t, r, "Café \ufffd Zoë")
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a *FieldError", err)
			}
			if fe.Field != tc.field || !strings.HasPrefix(fe.Err.Error(), tc.wantError) {
				t.Errorf("got field %q, %q; want field %q, %q", fe.Field, fe.Err, tc.field, tc.wantError)
			}
		})
	}
}

// checkUTF8Body renders a message for Zoë and reads its text/plain part
// back with Go and with Python's email: it holds want, as UTF-8.
func checkUTF8Body(t *testing.T, r *Renderer, want string) {
	t.Helper()
	m, err := r.Render(Recipient{Email: "zoe@example.org", Fields: map[string]string{"first_name": "Zoë"}})
	if err != nil {
		t.Fatal(err)
	}
	_, root := parseMessage(t, m.Data)
	p := root.find("text/plain")
	if p == nil || !strings.EqualFold(p.params["charset"], "utf-8") || !strings.Contains(string(p.body), want) {
		t.Fatalf("Go: text/plain part %+v does not hold %q as UTF-8", p, want)
	}
	cmd := exec.Command(python(t), "-c", `
import email, email.policy, json, sys
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
json.dump(m.get_body(("plain",)).get_content(), sys.stdout)
`)
	cmd.Stdin = bytes.NewReader(m.Data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var text string
	if err := json.Unmarshal(out, &text); err != nil || !strings.Contains(text, want) {
		t.Errorf("Python: text/plain got %q, %v; want it to hold %q", text, err, want)
	}
}
