package mailing

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/internal/smtptest"
	"github.com/mailrun/mailrun/journal"
	"github.com/mailrun/mailrun/sender"
)

// These tests pin rules that once lived in two packages and drifted apart;
// each now lives once and every path must agree with it.

// With sender: and dkim: set and no dkim.headers, the signature covers
// Sender: the h= default is render's, which adds the optional fields a
// message has, and the campaign no longer fills in a list of its own.
func TestDKIMSignsSender(t *testing.T) {
	e := newRunEnv(t, "newsletter", smtptest.Options{}, "")
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := os.WriteFile(filepath.Join(e.dir, "dkim.pem"), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	runAppend(t, filepath.Join(e.dir, "campaign.yaml"),
		"sender: \"Acme Mailer <mailer@acme.example>\"\ndkim:\n  domain: acme.example\n  selector: s1\n  key_file: dkim.pem\n")
	out := t.TempDir()
	var log bytes.Buffer
	rep, err := Preview(context.Background(), e.campaign(), out, 1, &log)
	if err != nil || rep.Written != 1 {
		t.Fatalf("preview: got %+v, %v\n%s", rep, err, log.String())
	}
	files, _ := filepath.Glob(filepath.Join(out, "*.eml"))
	if len(files) != 1 {
		t.Fatalf("got files %v, want one .eml", files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(data), &dkim.VerifyOptions{
		LookupTXT: func(string) ([]string, error) {
			return []string{"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)}, nil
		},
	})
	if err != nil || len(vs) != 1 || vs[0].Err != nil {
		t.Fatalf("verify: got %v, %v, want one valid signature", vs, err)
	}
	if !slices.ContainsFunc(vs[0].HeaderKeys, func(h string) bool { return strings.EqualFold(h, "Sender") }) {
		t.Errorf("got h= %v, want Sender signed", vs[0].HeaderKeys)
	}
}

// A suppress entry stops the same address in any letter case: the suppress
// list, the duplicates and the journal share campaign.AddrKey.
func TestSuppressAnyCase(t *testing.T) {
	e := newRunEnv(t, "newsletter", smtptest.Options{}, "")
	if err := os.WriteFile(filepath.Join(e.dir, "unsubscribed.txt"), []byte("ZOE@example.org\nJuergen@Example.NET\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runAppend(t, filepath.Join(e.dir, "campaign.yaml"), "suppress: [unsubscribed.txt]\n")
	sum := e.mustRun(SendOptions{})
	if sum.Sent != 3 || sum.Skipped != 2 {
		t.Errorf("got %+v, want 3 sent and 2 suppressed", sum)
	}
	want := allOf(newsletterAddrs, 1)
	want["zoe@example.org"], want["juergen@example.net"] = 0, 0
	e.wantDeliveries(want)
	st := e.journal()
	for _, a := range []string{"zoe@example.org", "juergen@example.net"} {
		if en := st[a]; en.Status != journal.Skipped || en.Reason != "suppressed" {
			t.Errorf("<%s>: got %+v, want skipped as suppressed", a, en)
		}
	}
}

// "[::1]" is loopback to check as it is to send: AUTH without TLS to it
// is allowed by both, and refused by both for a host elsewhere.
func TestLoopbackAlikeInCheckAndSend(t *testing.T) {
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"\"[::1]\"", true},
		{"\"::1\"", true},
		{"localhost", true},
		{"127.0.0.2", true},
		{"smtp.acme.example", false},
	} {
		t.Run(tc.host, func(t *testing.T) {
			t.Setenv(runPasswordEnv, "pw")
			dir := writeFiles(t, map[string]string{"campaign.yaml": baseYAML +
				"smtp:\n  host: " + tc.host + "\n  port: 2525\n  security: none\n  username: u\n  password_env: " + runPasswordEnv + "\n"})
			c := mustLoad(t, dir)
			var out bytes.Buffer
			rep, err := Check(context.Background(), c, &out)
			if err != nil {
				t.Fatal(err)
			}
			if got := rep.Errors == 0; got != tc.ok {
				t.Errorf("check: got ok %v, want %v\n%s", got, tc.ok, out.String())
			}
			if !tc.ok && !strings.Contains(out.String(), "campaign.yaml:") {
				t.Errorf("check: got\n%s\nwant the problem placed on the smtp section's line", out.String())
			}
			cfg, _, err := SenderConfig(c, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sender.New(cfg); (err == nil) != tc.ok {
				t.Errorf("sender.New: got %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// A campaign with host "[::1]", AUTH and security none passes check and is
// sent, through the same settings: the promise that check and send agree.
func TestIPv6LoopbackWithAuthSends(t *testing.T) {
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	e := newRunEnv(t, "newsletter", smtptest.Options{IPv6: true, Auth: true}, "")
	replaceLine(t, filepath.Join(e.dir, "campaign.yaml"), "  host: ::1", `  host: "[::1]"`)
	var out bytes.Buffer
	rep, err := Check(context.Background(), e.campaign(), &out)
	if err != nil || rep.Errors != 0 {
		t.Fatalf("check: got %+v, %v\n%s", rep, err, out.String())
	}
	if sum := e.mustRun(SendOptions{}); sum.Sent != len(newsletterAddrs) {
		t.Errorf("got %+v, want every recipient sent over [::1]", sum)
	}
}

// replaceLine replaces the line old, which must be in the file, with new.
func replaceLine(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	i := slices.Index(lines, old)
	if i < 0 {
		t.Fatalf("%s has no line %q:\n%s", path, old, data)
	}
	lines[i] = new
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// protocol: lmtp without a port goes to port 24 whether the relay comes
// from the smtp section or from a relay URL: the default is sender's alone.
func TestLMTPDefaultPortBothWays(t *testing.T) {
	fromYAML := mustLoad(t, writeFiles(t, map[string]string{"campaign.yaml": baseYAML +
		"smtp:\n  host: 127.0.0.1\n  protocol: lmtp\n  security: none\n"}))
	fromURL := mustLoad(t, writeFiles(t, nil))
	if err := OverrideSMTP(fromURL, "lmtp://127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*campaign.Campaign{"smtp section": fromYAML, "relay URL": fromURL} {
		cfg, _, err := SenderConfig(c, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		client, err := sender.New(cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := client.String(); !strings.HasPrefix(got, "lmtp 127.0.0.1:24 ") {
			t.Errorf("%s: got %q, want lmtp to 127.0.0.1:24", name, got)
		}
	}
}

// International addresses from the list (issue 14): with SMTPUTF8 offered
// they go as written; without it, an IDN domain goes in its A-label form
// and a non-ASCII local part fails its recipient with the reason, before
// anything is sent for it, while the others go.
func TestInternationalAddresses(t *testing.T) {
	for _, tc := range []struct {
		name      string
		noUTF8    bool
		wantRcpts []string
		ueniSent  bool
	}{
		{"SMTPUTF8 offered", false, []string{"ünï@example.org", "jose@exämple.example"}, true},
		{"no SMTPUTF8", true, []string{"jose@xn--exmple-cua.example"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newRunEnv(t, "newsletter", smtptest.Options{NoSMTPUTF8: tc.noUTF8}, "")
			if err := os.WriteFile(filepath.Join(e.dir, "recipients.csv"),
				[]byte("email,first_name,last_name,id,plan\nünï@example.org,Ünï,U,u1,pro\njose@exämple.example,José,J,j1,free\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			sum, out, err := e.run(context.Background(), SendOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, env := range e.srv.Envelopes() {
				got = append(got, env.Rcpts...)
				if tc.noUTF8 == env.SMTPUTF8 {
					t.Errorf("got SMTPUTF8 %v on MAIL FROM, want %v", env.SMTPUTF8, !tc.noUTF8)
				}
			}
			slices.Sort(got) // concurrent connections: any order
			slices.Sort(tc.wantRcpts)
			if !slices.Equal(got, tc.wantRcpts) {
				t.Errorf("got RCPT TO %q, want %q", got, tc.wantRcpts)
			}
			st := e.journal()
			if got := st["ünï@example.org"].Status == journal.Sent; got != tc.ueniSent {
				t.Errorf("ünï: got %+v, want sent %v", st["ünï@example.org"], tc.ueniSent)
			}
			if !tc.ueniSent && (st["ünï@example.org"].Status != journal.Failed || !strings.Contains(out, "SMTPUTF8")) {
				t.Errorf("ünï: got %+v and notices %q, want failed, naming SMTPUTF8", st["ünï@example.org"], out)
			}
			if st["jose@exämple.example"].Status != journal.Sent || sum.Sent < 1 {
				t.Errorf("jose: got %+v (summary %+v), want sent", st["jose@exämple.example"], sum)
			}
		})
	}
}
