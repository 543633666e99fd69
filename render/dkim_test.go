package render

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
)

// lookupFor serves the DKIM key record of d from memory, so verification
// needs no DNS.
func lookupFor(t *testing.T, d *DKIM) func(string) ([]string, error) {
	t.Helper()
	var rec string
	switch pub := d.Signer.Public().(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		rec = "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	case ed25519.PublicKey:
		rec = "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	default:
		t.Fatalf("key type %T", pub)
	}
	want := d.Selector + "._domainkey." + d.Domain
	return func(domain string) ([]string, error) {
		if domain != want {
			return nil, fmt.Errorf("no record for %s", domain)
		}
		return []string{rec}, nil
	}
}

// verifyDKIM checks the message's one signature with go-msgauth's verifier
// and returns the signed header keys.
func verifyDKIM(t *testing.T, data []byte, d *DKIM) []string {
	t.Helper()
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(data), &dkim.VerifyOptions{LookupTXT: lookupFor(t, d)})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if len(vs) != 1 {
		t.Fatalf("got %d signatures, want 1", len(vs))
	}
	if vs[0].Err != nil {
		t.Fatalf("signature does not verify: %v", vs[0].Err)
	}
	if vs[0].Domain != d.Domain {
		t.Errorf("d=: got %q, want %q", vs[0].Domain, d.Domain)
	}
	return vs[0].HeaderKeys
}

func TestDKIM(t *testing.T) {
	long := "{{.first_name}}, Grüße aus Köln – ein sehr langer Betreff mit Umlauten äöü, der umgebrochen werden muss 🎉 und noch länger wird"
	for _, tc := range []struct {
		name    string
		key     string
		headers []string
		unsub   bool
		sender  string // Config.Sender
		want    []string
	}{
		{"rsa default headers", "dkim-rsa.pem", nil, false, "",
			[]string{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type", "Reply-To"}},
		{"ed25519 default with unsubscribe", "dkim-ed25519.pem", nil, true, "",
			[]string{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type", "Reply-To",
				"List-Unsubscribe", "List-Unsubscribe-Post"}},
		// The default signs the Sender when the message has one: a
		// campaign that leaves DKIM.Headers empty gets it signed.
		{"ed25519 default with sender", "dkim-ed25519.pem", nil, false, "Acme Bot <bot@acme.example>",
			[]string{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type", "Reply-To", "Sender"}},
		{"rsa default with sender and unsubscribe", "dkim-rsa.pem", nil, true, "bot@acme.example",
			[]string{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type", "Reply-To", "Sender",
				"List-Unsubscribe", "List-Unsubscribe-Post"}},
		{"rsa long h= list", "dkim-rsa.pem", []string{"From", "To", "Subject", "Date", "Message-ID", "Reply-To",
			"List-Unsubscribe", "List-Unsubscribe-Post", "MIME-Version", "Content-Type", "X-Campaign"}, true, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.Subject = long
			cfg.Sender = tc.sender
			cfg.DKIM = &DKIM{Domain: "acme.example", Selector: "sel", Signer: loadKey(tc.key), Headers: tc.headers}
			if tc.unsub {
				cfg.Unsubscribe = Unsubscribe{URL: "https://acme.example/u/{{.id}}", Mailto: "u@acme.example?subject={{.id}}"}
			}
			r := newRenderer(t, cfg)
			m, err := r.Render(zoe())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(m.Data, []byte("DKIM-Signature: ")) {
				t.Fatalf("message does not start with DKIM-Signature")
			}
			if !bytes.Contains(m.Data, []byte("\r\nSubject: =?UTF-8?q?")) {
				t.Errorf("subject is not RFC 2047 encoded from its first line")
			}
			checkHeaderLines(t, m.Data)
			keys := verifyDKIM(t, m.Data, cfg.DKIM)
			want := tc.want
			if want == nil {
				want = tc.headers
			}
			if strings.Join(keys, ":") != strings.Join(want, ":") {
				t.Errorf("h=: got %v, want %v", keys, want)
			}

			if tc.sender != "" {
				// The Sender is signed: changing it breaks the signature.
				tampered := bytes.Replace(m.Data, []byte("bot@acme.example"), []byte("bot@evil.example"), 1)
				vs, err := dkim.VerifyWithOptions(bytes.NewReader(tampered), &dkim.VerifyOptions{LookupTXT: lookupFor(t, cfg.DKIM)})
				if err != nil || len(vs) != 1 || vs[0].Err == nil {
					t.Errorf("tampered Sender verified (%v)", err)
				}
			}

			// A changed body must fail verification.
			tampered := bytes.Replace(m.Data, []byte("issue 42"), []byte("issue 43"), 1)
			if bytes.Equal(tampered, m.Data) {
				t.Fatal("tamper target not found")
			}
			vs, err := dkim.VerifyWithOptions(bytes.NewReader(tampered), &dkim.VerifyOptions{LookupTXT: lookupFor(t, cfg.DKIM)})
			if err != nil {
				t.Fatal(err)
			}
			if len(vs) != 1 || vs[0].Err == nil {
				t.Errorf("tampered body verified")
			}
			// A changed signed header must fail too.
			tampered = bytes.Replace(m.Data, []byte("Message-ID: <test.1@"), []byte("Message-ID: <test.2@"), 1)
			vs, _ = dkim.VerifyWithOptions(bytes.NewReader(tampered), &dkim.VerifyOptions{LookupTXT: lookupFor(t, cfg.DKIM)})
			if len(vs) != 1 || vs[0].Err == nil {
				t.Errorf("tampered Message-ID verified")
			}
		})
	}
}
