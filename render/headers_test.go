package render

import (
	"bytes"
	"maps"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckHeaderName(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string // substring of the error; "" for a valid name
	}{
		{"X-Campaign", ""},
		{"x-campaign", ""},
		{"List-Id", ""},
		{"Precedence", ""},
		{"X-!#$%&'*+-.^_`|~", ""},
		{"", "empty header name"},
		{"X Bad", `header name "X Bad": invalid character ' ' (RFC 5322 section 2.2`},
		{"X-A:B", `invalid character ':'`},
		{"X-A\tB", `invalid character '\t'`},
		{"X-A\x00", `invalid character '\x00'`},
		{"X-\x7f", `invalid character '\x7f'`},
		{"X-Grüße", `invalid character 'ü'`},
		{"Subject", `header "Subject" is set by mailrun and cannot be overridden`},
		{"subject", "cannot be overridden"},
		{"From", "cannot be overridden"},
		{"TO", "cannot be overridden"},
		{"Cc", "cannot be overridden"},
		{"Bcc", "cannot be overridden"},
		{"Sender", "cannot be overridden"},
		{"Reply-To", "cannot be overridden"},
		{"Date", "cannot be overridden"},
		{"Message-Id", "cannot be overridden"},
		{"MIME-Version", "cannot be overridden"},
		{"Content-Type", "cannot be overridden"},
		{"Content-Transfer-Encoding", "cannot be overridden"},
		{"content-language", "cannot be overridden"},
		{"DKIM-Signature", "cannot be overridden"},
		{"List-Unsubscribe", "cannot be overridden"},
		{"List-Unsubscribe-Post", "cannot be overridden"},
		{"Return-Path", "cannot be overridden"},
		{"Received", "cannot be overridden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckHeaderName(tc.name)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v, want nil", err)
			case tc.want != "" && err == nil:
				t.Errorf("got nil, want an error containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("got %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// Every field of a golden message that render wrote itself (all but the
// campaign's extra X-Campaign) is refused as an extra header, so the
// reserved list cannot fall behind what compose writes.
func TestCheckHeaderNameRefusesWhatRenderWrites(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("golden files: %v, %v", files, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for k := range msg.Header {
			if k == "X-Campaign" {
				continue
			}
			if err := CheckHeaderName(k); err == nil {
				t.Errorf("%s: render writes %s, but CheckHeaderName accepts it", f, k)
			}
		}
	}
}

// CSV values in the unsubscribe templates are URL-escaped: they cannot add
// a parameter, a path or a mailto header to the one-click link.
func TestUnsubscribeValuesEscaped(t *testing.T) {
	cfg := baseConfig()
	cfg.Unsubscribe = Unsubscribe{URL: "https://acme.example/u/{{.id}}", Mailto: "unsub@acme.example?subject={{.id}}"}
	r := newRenderer(t, cfg)
	rc := zoe()
	rc.Fields = maps.Clone(rc.Fields)
	rc.Fields["id"] = "../admin?all=1&cc=evil@example.net x"
	m, err := r.Render(rc)
	if err != nil {
		t.Fatal(err)
	}
	want := "<https://acme.example/u/..%2Fadmin%3Fall%3D1%26cc%3Devil%40example.net%20x>"
	if !bytes.Contains(m.Data, []byte(want)) {
		t.Errorf("List-Unsubscribe does not hold %s:\n%s", want, m.Data[:bytes.Index(m.Data, []byte("\r\n\r\n"))])
	}
	if bytes.Contains(m.Data, []byte("&cc=")) {
		t.Error("a CSV value added a mailto parameter")
	}
}

// Tabs and runs of blanks in a header value collapse to one space: go-mail
// folds only at spaces, and no header line may pass 998 octets or be
// blank after folding.
func TestHeaderBlanksCollapse(t *testing.T) {
	cfg := baseConfig()
	cfg.Subject = strings.Repeat("abcdefgh\t", 120) + "end" + strings.Repeat(" ", 1000) + "b"
	m, err := newRenderer(t, cfg).Render(zoe())
	if err != nil {
		t.Fatal(err)
	}
	head := string(m.Data[:bytes.Index(m.Data, []byte("\r\n\r\n"))])
	for _, l := range strings.Split(head, "\r\n") {
		if len(l) > 998 {
			t.Errorf("a header line of %d octets", len(l))
		}
		if strings.TrimSpace(l) == "" {
			t.Error("a header line of blanks only")
		}
	}
	if strings.Contains(m.Subject, "\t") || strings.Contains(m.Subject, "  ") {
		t.Errorf("subject keeps tabs or double blanks: %q", m.Subject[:40])
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
