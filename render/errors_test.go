package render

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
			[]string{`template: subject:1:5: executing "subject" at <.nickname>: map has no entry for key "nickname"`}},
		{"missing column in markdown", nil, map[string]string{"plan": ""}, "", "body",
			[]string{`template: body.md:6:`, `map has no entry for key "plan"`}},
		{"missing column in layout", nil, map[string]string{"id": ""}, "", "layout",
			[]string{`template: layout.html:5:`, `"id"`}},
		{"missing column in name", nil, map[string]string{"last_name": ""}, "", "name", []string{`template: name:1:`}},
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
