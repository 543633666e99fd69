package mailing

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailrun/mailrun/campaign"
)

// baseYAML is a minimal valid campaign; tests append sections to it.
const baseYAML = `from: "Acme <news@acme.example>"
subject: "Hi {{.first_name}}"
recipients: recipients.csv
body:
  markdown: body.md
`

// writeFiles writes files (name -> content) into a new temporary campaign
// folder and returns it. Missing base files are added.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	base := map[string]string{
		"campaign.yaml":  baseYAML,
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

// mustLoad loads a campaign that must have no errors.
func mustLoad(t *testing.T, dir string) *campaign.Campaign {
	t.Helper()
	c, err := campaign.Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

// inFolder cuts the campaign folder dir off the paths in s: problems name
// files by the path given to campaign.Load, a temporary folder in tests.
func inFolder(dir, s string) string {
	return strings.ReplaceAll(s, dir+string(filepath.Separator), "")
}
