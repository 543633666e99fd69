package mailing

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPreviewTemplateFuncs: sprig's functions reach the sent bytes
// through the campaign file: upper in the subject, default for an empty
// cell in the Markdown body.
func TestPreviewTemplateFuncs(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"campaign.yaml":  strings.Replace(baseYAML, `subject: "Hi {{.first_name}}"`, `subject: "Hi {{ .first_name | upper }}"`, 1),
		"recipients.csv": "email,first_name,nickname\nann@example.org,Ann,\nbo@example.org,Robert,Bo\n",
		"body.md":        "Hello {{ default \"friend\" .nickname }}!\n",
	})
	c := mustLoad(t, dir)
	out := t.TempDir()
	var log bytes.Buffer
	rep, err := Preview(context.Background(), c, out, 0, &log)
	if err != nil || rep.Failed != 0 {
		t.Fatalf("Preview: %v, %+v\n%s", err, rep, log.String())
	}
	for file, want := range map[string][]string{
		"00002-ann@example.org.eml": {"Subject: Hi ANN", "Hello friend!"},
		"00003-bo@example.org.eml":  {"Subject: Hi ROBERT", "Hello Bo!"},
	} {
		b, err := os.ReadFile(filepath.Join(out, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !bytes.Contains(b, []byte(w)) {
				t.Errorf("%s: no %q in\n%s", file, w, b)
			}
		}
	}
}

// TestCheckRefusesEnv: a template cannot read the environment: check
// names the template file and line of {{env}}, says why, and the
// variable's value appears nowhere.
func TestCheckRefusesEnv(t *testing.T) {
	t.Setenv("SMTP_PASSWORD", "hunter2-secret")
	for _, tc := range []struct {
		name, want string
		files      map[string]string
	}{
		{"body", "body.md:3:", map[string]string{"body.md": "Hello\n\n{{ env \"SMTP_PASSWORD\" }}\n"}},
		{"subject", "subject:1:", map[string]string{"campaign.yaml": strings.Replace(baseYAML,
			`subject: "Hi {{.first_name}}"`, `subject: "Hi {{ env \"SMTP_PASSWORD\" }}"`, 1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, writeFiles(t, tc.files))
			var out bytes.Buffer
			rep, err := Check(context.Background(), c, &out)
			if err != nil {
				t.Fatal(err)
			}
			got := inFolder(c.Dir(), out.String())
			for _, w := range []string{tc.want, `function "env" not defined`, "left out"} {
				if !strings.Contains(got, w) {
					t.Errorf("got %q, want it to hold %q", got, w)
				}
			}
			if strings.Contains(got, "hunter2") || rep.Errors == 0 {
				t.Errorf("got %q and %+v, want an error without the secret", got, rep)
			}
		})
	}
}
