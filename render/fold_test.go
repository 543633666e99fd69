package render

import (
	"bytes"
	"fmt"
	"net/mail"
	"strings"
	"testing"
)

// A visible group of internationalised addresses is one preformatted To
// header, which go-mail writes as it is: it is folded so that no line
// passes 78 octets, and it still parses to every address.
func TestVisibleGroupToIsFolded(t *testing.T) {
	dir := tempCampaign(t, map[string]string{"b.md": "Hello all\n"})
	cfg := Config{Dir: dir, From: "news@acme.example", Subject: "s", Markdown: "b.md", Group: Group{Visible: true}}
	r := newRenderer(t, cfg)
	var to []string
	for i := range 40 {
		to = append(to, fmt.Sprintf("用户%02d@例子.example", i))
	}
	m, err := r.RenderGroup(to)
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := bytes.Cut(m.Data, []byte("\r\n\r\n"))
	for _, l := range strings.Split(string(head), "\r\n") {
		if len(l) > 78 {
			t.Errorf("header line of %d octets: %q", len(l), l)
		}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	got, err := msg.Header.AddressList("To")
	if err != nil {
		t.Fatalf("To does not parse: %v", err)
	}
	if len(got) != len(to) {
		t.Fatalf("To holds %d addresses, want %d", len(got), len(to))
	}
	for i, a := range got {
		if a.Address != to[i] {
			t.Errorf("address %d: %q, want %q", i, a.Address, to[i])
		}
	}
}
