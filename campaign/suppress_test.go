package campaign

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSuppressed(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"campaign.yaml": baseYAML + "suppress:\n  - list.txt\n  - list.csv\n  - empty.txt\n",
		"list.txt":      "# unsubscribed\n\n  Ann@Example.ORG  \nBob Smith <bob@example.org>\n",
		"list.csv":      "\uFEFFname,Email\nCy,cy@example.org\n\"Dee, D\",dee@Example.org\n",
		"empty.txt":     "",
	})
	s, err := LoadSuppressions(mustLoad(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr string
		want bool
	}{
		{"Ann@example.org", true},   // domain compared case-insensitively
		{" Ann@EXAMPLE.org ", true}, // trimmed
		{"ann@example.org", true},   // the whole address compared case-insensitively (AddrKey)
		{"ANN@example.org", true},
		{"bob@example.org", true}, // "Name <addr>" line
		{"cy@EXAMPLE.ORG", true},  // CSV email column
		{"dee@example.org", true},
		{"name@example.org", false},
		{"Email", false}, // the CSV header is not an address
		{"", false},
	}
	for _, tt := range tests {
		if got := s.Suppressed(tt.addr); got != tt.want {
			t.Errorf("Suppressed(%q): got %v, want %v", tt.addr, got, tt.want)
		}
	}
	if s.Len() != 4 {
		t.Errorf("got %d addresses, want 4", s.Len())
	}
	var nilSet *Suppressions
	if nilSet.Suppressed("a@b") {
		t.Error("got a nil set suppressing, want nothing suppressed")
	}
}

func TestLoadSuppressionsMissing(t *testing.T) {
	dir := writeFiles(t, map[string]string{"campaign.yaml": baseYAML + "suppress: [gone.txt]\n", "gone.txt": ""})
	c := mustLoad(t, dir)
	os.Remove(filepath.Join(dir, "gone.txt"))
	_, err := LoadSuppressions(c)
	if err == nil || !strings.Contains(err.Error(), "gone.txt: no such file") {
		t.Errorf("got %v, want an error naming gone.txt", err)
	}
}

func TestAppendSuppress(t *testing.T) {
	tests := []struct {
		name, old string
		exists    bool
		add       []string
		want      string
	}{
		{"creates", "", false, []string{"a@x.example", "a@X.EXAMPLE", "b@x.example"}, "a@x.example\nb@x.example\n"},
		{"appends new only", "# list\na@x.example", true, []string{"a@X.example", "c@x.example", " "}, "# list\na@x.example\nc@x.example\n"},
		{"nothing new leaves the file", "a@x.example\n", true, []string{"a@x.example"}, "a@x.example\n"},
		{"keeps CSV layout", "name,email\nA,a@x.example\n", true, []string{"b@x.example", "a@x.example"}, "name,email\nA,a@x.example\n,b@x.example\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "bounced.txt")
			if tt.exists {
				if err := os.WriteFile(path, []byte(tt.old), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := AppendSuppress(path, tt.add); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != tt.want {
				t.Errorf("got %q, %v, want %q", got, err, tt.want)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("got %d files, want no temporary file left", len(entries))
			}
			if fi, _ := os.Stat(path); tt.exists && fi.Mode().Perm() != 0o600 {
				t.Errorf("got mode %v, want 0600 kept", fi.Mode().Perm())
			}
		})
	}
	if err := AppendSuppress(filepath.Join(t.TempDir(), "x.txt"), []string{"a@x\r\nb@y"}); err == nil {
		t.Error("got no error for a line break, want one")
	}
}
