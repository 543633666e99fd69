package render_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"strings"
	"time"

	"github.com/mailrun/mailrun/render"
)

// Render one message with a fixed clock and Message-ID, then read it back:
// a few of its headers and its MIME part tree.
func ExampleRenderer_Render() {
	r, err := render.New(render.Config{
		Dir:         "testdata/example", // welcome.md, terms.txt
		From:        "Acme News <news@acme.example>",
		Subject:     "Welcome, {{.first_name}}",
		Name:        "{{.first_name}} {{.last_name}}",
		Markdown:    "welcome.md",
		Attachments: []string{"terms.txt"},
		Headers:     map[string]string{"X-Campaign": "welcome-{{.Vars.wave}}"},
		Vars:        map[string]any{"wave": 3},
		Now:         func() time.Time { return time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC) },
		MessageID:   func() string { return "welcome.1@acme.example" },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	m, err := r.Render(render.Recipient{Row: 2, Email: "zoe@example.org", Fields: map[string]string{
		"first_name": "Zoe", "last_name": "Adams", "plan": "Pro",
	}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("envelope:", m.From, "->", m.To)

	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		log.Fatal(err)
	}
	for _, k := range []string{"From", "To", "Subject", "Date", "Message-Id", "X-Campaign"} {
		fmt.Printf("%s: %s\n", k, msg.Header.Get(k))
	}
	printParts(msg.Header.Get("Content-Type"), msg.Body, "")
	// Output:
	// envelope: news@acme.example -> [zoe@example.org]
	// From: "Acme News" <news@acme.example>
	// To: "Zoe Adams" <zoe@example.org>
	// Subject: Welcome, Zoe
	// Date: Wed, 25 Nov 2026 09:30:00 +0000
	// Message-Id: <welcome.1@acme.example>
	// X-Campaign: welcome-3
	// multipart/mixed
	//   multipart/alternative
	//     text/plain
	//     text/html
	//   text/plain; name="terms.txt"
}

// printParts prints the MIME tree below a part of type ctype, one line a
// part, indented by depth; a part with a name shows it.
func printParts(ctype string, body io.Reader, indent string) {
	typ, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		log.Fatal(err)
	}
	line := indent + typ
	if params["name"] != "" {
		line += fmt.Sprintf("; name=%q", params["name"])
	}
	fmt.Println(line)
	if !strings.HasPrefix(typ, "multipart/") {
		return
	}
	mr := multipart.NewReader(body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return
		}
		if err != nil {
			log.Fatal(err)
		}
		printParts(p.Header.Get("Content-Type"), p, indent+"  ")
	}
}

// CheckHeaderName is the rule New applies to Config.Headers, exported so
// that a configuration can be checked before rendering.
func ExampleCheckHeaderName() {
	for _, name := range []string{"X-Campaign", "List-Id", "Subject", "content-type", "X Campaign", "X-Grüße"} {
		if err := render.CheckHeaderName(name); err != nil {
			fmt.Println(err)
		} else {
			fmt.Printf("%s: ok\n", name)
		}
	}
	// Output:
	// X-Campaign: ok
	// List-Id: ok
	// header "Subject" is set by mailrun and cannot be overridden
	// header "content-type" is set by mailrun and cannot be overridden
	// header name "X Campaign": invalid character ' ' (RFC 5322 section 2.2: printable US-ASCII except colon)
	// header name "X-Grüße": invalid character 'ü' (RFC 5322 section 2.2: printable US-ASCII except colon)
}

// ParseDKIMKey turns a PEM key file into the Signer of render.DKIM;
// WeakDKIMKey tells whether its size deserves a warning.
func ExampleParseDKIMKey() {
	for _, file := range []string{"testdata/dkim-ed25519.pem", "testdata/dkim-rsa.pem", "testdata/dkim-rsa512.pem"} {
		data, err := os.ReadFile(file)
		if err != nil {
			log.Fatal(err)
		}
		signer, bits, err := render.ParseDKIMKey(data)
		if err != nil {
			fmt.Printf("%s: %v\n", file, err)
			continue
		}
		_, ed := signer.(ed25519.PrivateKey)
		fmt.Printf("%s: Ed25519 %v, RSA bits %d, weak %v\n", file, ed, bits, render.WeakDKIMKey(bits))
	}
	// Output:
	// testdata/dkim-ed25519.pem: Ed25519 true, RSA bits 0, weak false
	// testdata/dkim-rsa.pem: Ed25519 false, RSA bits 2048, weak false
	// testdata/dkim-rsa512.pem: RSA key of 512 bits is too weak: DKIM verifiers reject keys under 1024 bits (RFC 8301 section 3.2)
}
