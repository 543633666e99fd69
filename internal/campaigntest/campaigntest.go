// Package campaigntest writes small campaign folders for tests: a minimal
// valid campaign file, list and body that a test overrides file by file.
// It imports nothing of mailrun, so that package campaign's own tests can
// use it as well as the packages built on it.
package campaigntest

import (
	"os"
	"path/filepath"
	"testing"
)

// BaseYAML is a minimal valid campaign file; tests append sections to it.
const BaseYAML = `from: "Acme <news@acme.example>"
subject: "Hi {{.first_name}}"
recipients: recipients.csv
body:
  markdown: body.md
`

// WriteFiles writes files (name -> content) into a new temporary campaign
// folder and returns it. The base files (campaign.yaml, recipients.csv,
// body.md) are added where files does not name them.
func WriteFiles(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	base := map[string]string{
		"campaign.yaml":  BaseYAML,
		"recipients.csv": "email,first_name\nann@example.org,Ann\n",
		"body.md":        "Hello {{.first_name}}\n",
	}
	for k, v := range files {
		base[k] = v
	}
	for name, data := range base {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
