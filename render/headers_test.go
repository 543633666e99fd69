package render

import (
	"bytes"
	"net/mail"
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
