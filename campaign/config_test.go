package campaign

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadDefaults(t *testing.T) {
	dir := writeFiles(t, nil)
	c := mustLoad(t, dir)
	checks := []struct {
		name      string
		got, want any
	}{
		{"name", c.Name, "campaign"},
		{"recipients.file", c.Recipients.File, "recipients.csv"},
		{"recipients.email", c.Recipients.Email, ""}, // found in the header by OpenRecipients
		{"mode", c.Mode, "individual"},
		// The wire's defaults are sender.New's: the model leaves them unset.
		{"smtp.security", c.SMTP.Security, ""},
		{"smtp.port", c.SMTP.Port, 0},
		{"send.timeout", c.Send.Timeout, time.Duration(0)},
		{"send.max_rcpt", c.Send.MaxRcpt, 0},
		{"send.concurrency", c.Send.Concurrency, 4},
		{"send.burst", c.Send.Burst, 10},
		{"send.retries", c.Send.Retries, 5},
		{"send.backoff", c.Send.Backoff, time.Duration(0)}, // the sender's default
		{"send.abort_after", c.Send.AbortAfter, 50},
		{"send.per_connection", c.Send.PerConnection, 500},
		{"dir", c.Dir(), dir},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if len(c.Problems()) != 0 {
		t.Errorf("got problems %v, want none", c.Problems())
	}
}

func TestLoadSections(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"news.yaml": strings.Replace(baseYAML, "recipients: recipients.csv", "recipients:\n  file: recipients.csv\n  email: email\n  name: \"{{.first_name}}\"", 1) + `smtp:
  host: 127.0.0.1
  security: tls
  username: u
  password_env: MAILRUN_TEST_UNSET_VAR
  chunking: false
send:
  rate: 30/m
  backoff: 5s
dkim:
  domain: acme.example
  selector: s1
  key_file: k.pem
unsubscribe:
  url: "https://acme.example/u/{{.email}}"
  mailto: "mailto:unsub@acme.example"
`,
		"k.pem": ed25519PEM(t),
	})
	c, err := Load(filepath.Join(dir, "news.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The port stays unset: its default is the wire's (sender.DefaultPort).
	if c.Name != "news" || c.SMTP.Port != 0 || c.Send.Burst != 1 || c.Send.Backoff != 5*time.Second {
		t.Errorf("got name %q port %d burst %d backoff %v, want news 0 1 5s", c.Name, c.SMTP.Port, c.Send.Burst, c.Send.Backoff)
	}
	if r, err := c.Rate(); err != nil || r != 0.5 {
		t.Errorf("Rate: got %v, %v, want 0.5", r, err)
	}
	// Unset, so render's default applies: it adds Sender, Reply-To and the
	// List-Unsubscribe pair when the message has them.
	if len(c.DKIM.Headers) != 0 {
		t.Errorf("dkim.headers: got %v, want none (render's default)", c.DKIM.Headers)
	}
	// The unset password variable is a warning, not an error.
	ps := c.Problems()
	if len(ps) != 1 || !ps[0].Warning || !strings.Contains(ps[0].String(), "news.yaml:13: smtp.password_env: warning: environment variable MAILRUN_TEST_UNSET_VAR is not set") {
		t.Errorf("got problems %v, want one warning about the variable", ps)
	}
	rc, err := c.RenderConfig()
	if err != nil {
		t.Fatal(err)
	}
	if rc.DKIM == nil || rc.DKIM.Signer == nil || rc.Unsubscribe.Mailto != "unsub@acme.example" || rc.Name != "{{.first_name}}" {
		t.Errorf("RenderConfig: got %+v", rc)
	}
}

func TestLoadProblems(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string            // replaces campaign.yaml
		files map[string]string // extra files
		want  []string          // substrings of the printed problems
		deny  []string          // must not appear (secrets)
		fatal bool              // Load returns no Campaign
	}{
		{name: "unknown key with line", yaml: "from: a@b.example\nsubject: s\nsubjet: typo\n", fatal: true,
			want: []string{"campaign.yaml:3: subjet: unknown key"}},
		{name: "unknown nested key", yaml: baseYAML + "smtp:\n  host: h\n  hots: x\n", fatal: true,
			want: []string{"campaign.yaml:8: smtp.hots: unknown key"}},
		{name: "unknown key in recipients mapping", yaml: strings.Replace(baseYAML, "recipients: recipients.csv", "recipients:\n  file: recipients.csv\n  colum: x", 1), fatal: true,
			want: []string{"campaign.yaml:5: recipients.colum: unknown key"}},
		{name: "yaml syntax", yaml: "from: [\n", fatal: true, want: []string{"campaign.yaml:"}},
		{name: "plain smtp password", yaml: baseYAML + "smtp:\n  host: h\n  password: hunter2\n", fatal: true,
			want: []string{"campaign.yaml:8: smtp.password: a password in the campaign file is refused: use password_env"},
			deny: []string{"hunter2", "unknown key"}},
		{name: "plain bounces password", yaml: baseYAML + "bounces:\n  password: s3cret\n", fatal: true,
			want: []string{"campaign.yaml:7: bounces.password:", "password_file"}, deny: []string{"s3cret"}},
		{name: "bad rate", yaml: baseYAML + "send:\n  rate: 50/d\n", want: []string{`campaign.yaml:7: send.rate: "50/d" is not N/s, N/m or N/h`}},
		{name: "zero rate", yaml: baseYAML + "send:\n  rate: 0/s\n", want: []string{"send.rate:", "positive"}},
		{name: "negative concurrency", yaml: baseYAML + "send:\n  concurrency: -1\n", want: []string{"campaign.yaml:7: send.concurrency: must not be negative"}},
		{name: "missing from and subject", yaml: "recipients: recipients.csv\nbody:\n  markdown: body.md\n",
			want: []string{"campaign.yaml: from: missing", "campaign.yaml: subject: missing"}},
		{name: "invalid from", yaml: strings.Replace(baseYAML, `"Acme <news@acme.example>"`, `"not an address"`, 1), want: []string{"campaign.yaml:1: from: invalid address list"}},
		{name: "several authors need sender", yaml: strings.Replace(baseYAML, `"Acme <news@acme.example>"`, `"a@x.example, b@x.example"`, 1),
			want: []string{"campaign.yaml: sender: required because from lists 2 mailboxes"}},
		{name: "both bodies", yaml: baseYAML + "  html: body.md\n", want: []string{"campaign.yaml:4: body: set only one of markdown and html"}},
		{name: "no body", yaml: "from: a@b.example\nsubject: s\nrecipients: recipients.csv\n", want: []string{"body: set exactly one of markdown and html"}},
		{name: "missing body file", yaml: strings.Replace(baseYAML, "body.md", "nope.md", 1), want: []string{"campaign.yaml:5: body.markdown: nope.md: no such file"}},
		{name: "attachment escaping the folder", yaml: baseYAML + "attachments:\n  - ../secret.txt\n  - /etc/passwd\n",
			want: []string{"campaign.yaml:7: attachments.0: ../secret.txt: path escapes from the campaign folder", "campaign.yaml:8: attachments.1: /etc/passwd: path escapes"}},
		{name: "recipients escaping the folder", yaml: strings.Replace(baseYAML, "recipients: recipients.csv", "recipients: ../r.csv", 1),
			want: []string{"recipients.file: ../r.csv: path escapes"}},
		{name: "header with line break", yaml: baseYAML + "headers:\n  X-A: \"a\\r\\nBcc: evil@x.example\"\n",
			want: []string{"campaign.yaml:7: headers.X-A: line breaks are not allowed"}},
		{name: "reserved header", yaml: baseYAML + "headers:\n  Subject: x\n", want: []string{`headers.Subject: header "Subject" is set by mailrun`}},
		{name: "bad mode", yaml: baseYAML + "mode: broadcast\n", want: []string{`campaign.yaml:6: mode: "broadcast" is not individual or group`}},
		{name: "group without to", yaml: baseYAML + "mode: group\n", want: []string{"group.to: missing"}},
		{name: "username without password", yaml: baseYAML + "smtp:\n  host: h\n  username: u\n", want: []string{"smtp.username: needs password_env or password_file"}},
		{name: "http unsubscribe", yaml: baseYAML + "unsubscribe:\n  url: http://acme.example/u\n", want: []string{"campaign.yaml:7: unsubscribe.url: must start with https://"}},
		{name: "missing suppress file", yaml: baseYAML + "suppress:\n  - gone.txt\n", want: []string{"campaign.yaml:7: suppress.0: gone.txt: no such file"}},
		{name: "dkim incomplete", yaml: baseYAML + "dkim:\n  domain: acme.example\n", want: []string{"dkim.selector: missing", "dkim.key_file: missing"}},
		{name: "dkim weak RSA", yaml: baseYAML + dkimYAML, files: map[string]string{"k.pem": readTestdata(t, "rsa512.pem")},
			want: []string{"dkim.key_file: k.pem: RSA key of 512 bits is too weak"}},
		{name: "dkim type mismatch", yaml: baseYAML + dkimYAML, files: map[string]string{"k.pem": relabel(ed25519PEM(t), "RSA PRIVATE KEY")},
			want: []string{`dkim.key_file: k.pem: PEM type "RSA PRIVATE KEY" but the content is not a PKCS#1 RSA key`}},
		{name: "dkim not a key", yaml: baseYAML + dkimYAML, files: map[string]string{"k.pem": "hello"},
			want: []string{"dkim.key_file: k.pem: no PEM block found"}},
		{name: "dkim without From", yaml: baseYAML + dkimYAML + "  headers: [To, Subject]\n", files: map[string]string{"k.pem": ed25519PEM(t)},
			want: []string{"dkim.headers: headers must include From"}},
		{name: "bounces", yaml: baseYAML + "bounces:\n  host: mail.acme.example\n  security: none\n  protocol: pop3\n  after: move\n",
			want: []string{`bounces.after: "move" is not delete, keep`, "bounces.write_to: missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"campaign.yaml": tt.yaml}
			for k, v := range tt.files {
				files[k] = v
			}
			c, err := Load(writeFiles(t, files))
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("got %T %v, want Problems", err, err)
			}
			if tt.fatal != (c == nil) {
				t.Errorf("got campaign %v, want nil campaign = %v", c != nil, tt.fatal)
			}
			got := err.Error()
			containsAll(t, got, tt.want)
			for _, d := range tt.deny {
				if strings.Contains(got, d) {
					t.Errorf("got\n%s\nwant no %q", got, d)
				}
			}
		})
	}
}

func TestLoadDKIMKeys(t *testing.T) {
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(rsa1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, pem string
		warning   bool
	}{
		{"ed25519 pkcs8", ed25519PEM(t), false},
		{"rsa 1024 pkcs1 warns", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsa1024)})), true},
		{"rsa 1024 pkcs8 warns", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, writeFiles(t, map[string]string{"campaign.yaml": baseYAML + dkimYAML, "k.pem": tt.pem}))
			ps := c.Problems()
			if got := len(ps) == 1 && ps[0].Warning; got != tt.warning {
				t.Errorf("got problems %v, want a warning: %v", ps, tt.warning)
			}
			rc, err := c.RenderConfig()
			if err != nil || rc.DKIM == nil || rc.DKIM.Signer == nil {
				t.Fatalf("RenderConfig: got %v, %v, want a signer", rc.DKIM, err)
			}
		})
	}
}

func TestPassword(t *testing.T) {
	t.Setenv("MAILRUN_TEST_PW", "envsecret")
	dir := writeFiles(t, map[string]string{
		"campaign.yaml": baseYAML + "smtp:\n  host: 127.0.0.1\n  username: u\n  password_env: MAILRUN_TEST_PW\nbounces:\n  host: 127.0.0.1\n  username: b\n  password_file: pw.txt\n  write_to: bounced.txt\nsuppress: [bounced.txt]\n",
		"pw.txt":        "filesecret\n",
		"bounced.txt":   "",
	})
	c := mustLoad(t, dir)
	for _, tt := range []struct{ section, want string }{{"smtp", "envsecret"}, {"bounces", "filesecret"}} {
		got, err := c.Password(tt.section)
		if err != nil || got != tt.want {
			t.Errorf("Password(%s): got %q, %v, want %q", tt.section, got, err, tt.want)
		}
	}
	os.Unsetenv("MAILRUN_TEST_PW")
	_, err := c.Password("smtp")
	if err == nil || !strings.Contains(err.Error(), "MAILRUN_TEST_PW is not set") {
		t.Errorf("got %v, want an error naming the variable", err)
	}
}

const dkimYAML = "dkim:\n  domain: acme.example\n  selector: s1\n  key_file: k.pem\n"

func ed25519PEM(t *testing.T) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func relabel(p, typ string) string {
	b, _ := pem.Decode([]byte(p))
	b.Type = typ
	return string(pem.EncodeToMemory(b))
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// Settings past their sane bounds are refused with the bound and its reason.
func TestSendBounds(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"send:\n  concurrency: 1000000\n", "campaign.yaml:7: send.concurrency: 1000000 is more than 100 (connections"},
		{"send:\n  max_rcpt: 5000\n", "send.max_rcpt: 5000 is more than 1000"},
		{"send:\n  retries: 101\n", "send.retries: 101 is more than 100"},
		{"send:\n  backoff: 2h\n", "send.backoff: 2h0m0s is more than 1h0m0s"},
		{"send:\n  timeout: -1s\n", "send.timeout: must not be negative"},
	}
	for _, tt := range tests {
		_, err := Load(writeFiles(t, map[string]string{"campaign.yaml": baseYAML + tt.yaml}))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want %q", tt.yaml, err, tt.want)
		}
	}
	c := mustLoad(t, writeFiles(t, map[string]string{"campaign.yaml": baseYAML + "send:\n  concurrency: 100\n  max_rcpt: 1000\n"}))
	if c.Send.Concurrency != 100 {
		t.Errorf("got concurrency %d, want the bound itself accepted", c.Send.Concurrency)
	}
}

// A problem is one line on the terminal: control characters from a file
// name or a value are shown escaped.
func TestProblemPrintable(t *testing.T) {
	p := Problem{File: "campaign.yaml", Line: 9, Field: "attachments.0", Message: "a\r\nFAKE: line\x1b[2J\u202e.pdf: no such file"}
	want := `campaign.yaml:9: attachments.0: a\r\nFAKE: line\x1b[2J\u202e.pdf: no such file`
	if got := p.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := Printable("Zoë <zoe@example.org>"); got != "Zoë <zoe@example.org>" {
		t.Errorf("got %q, want text without control characters untouched", got)
	}
}

// The YAML mistakes people make get their fix, on their line.
func TestLoadYAMLMistakes(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{baseYAML + "smtp:\n\thost: 127.0.0.1\n", "campaign.yaml:7: tabs are not allowed for indentation in YAML: indent with spaces"},
		{baseYAML + "smtp:\n  host: h\n  port: \"smtp\"\n", `campaign.yaml:8: smtp.port: "smtp" is not a number`},
		{baseYAML + "send:\n  timeout: 30\n", `campaign.yaml:7: send.timeout: "30" is not a duration: write it with its unit, like 30s`},
		{baseYAML + "send:\n  concurrency: many\n", `campaign.yaml:7: send.concurrency: "many" is not a number`},
	}
	for _, tt := range tests {
		_, err := Load(writeFiles(t, map[string]string{"campaign.yaml": tt.yaml}))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want %q", tt.yaml, err, tt.want)
		}
	}
	// A tab inside a block of text is no mistake.
	mustLoad(t, writeFiles(t, map[string]string{"campaign.yaml": baseYAML + "vars:\n  code: |\n    a\n    \tb\n"}))
}
