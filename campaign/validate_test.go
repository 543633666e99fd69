package campaign

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadWith copies the newsletter example, appends yaml to its campaign
// file (after dropping its own name: line when yaml sets one) and loads it.
func loadWith(t *testing.T, yaml string) (*Campaign, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "examples", "newsletter"))); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "campaign.yaml")
	if strings.Contains(yaml, "\nname:") {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var keep []string
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(l, "name:") {
				keep = append(keep, l)
			}
		}
		if err := os.WriteFile(p, []byte(strings.Join(keep, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	appendFile(t, p, yaml)
	return Load(dir)
}

// A password pasted into password_env is refused without being echoed.
func TestPasswordEnvHoldingAPassword(t *testing.T) {
	const secret = "S3cr3t-hunter2!"
	c, err := loadWith(t, "\nsmtp:\n  host: 127.0.0.1\n  port: 25\n  security: none\n  username: u\n  password_env: \""+secret+"\"\n")
	if err == nil || !strings.Contains(err.Error(), "smtp.password_env") {
		t.Fatalf("got %v, want a password_env error", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("the error shows the secret: %v", err)
	}
	if c != nil {
		if _, err := c.Password("smtp"); err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("Password: got %v, want an error without the secret", err)
		}
	}
}

// The name becomes the journal's file name: it cannot point elsewhere.
func TestNameMustBePlain(t *testing.T) {
	for _, name := range []string{"../../escaped", "a/b", ".."} {
		if _, err := loadWith(t, "\nname: \""+name+"\"\n"); err == nil || !strings.Contains(err.Error(), "name:") {
			t.Errorf("name %q: got %v, want a name error", name, err)
		}
	}
}

// bounces.write_to in a folder that is a symlink to outside is refused:
// the bounce processor would write there.
func TestWriteToThroughSymlinkRefused(t *testing.T) {
	outside := t.TempDir()
	c, err := loadWith(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(c.Dir(), "lists")); err != nil {
		t.Fatal(err)
	}
	bounces := "\nbounces:\n  protocol: imap\n  host: 127.0.0.1\n  security: none\n  write_to: lists/bounced.txt\n"
	appendFile(t, c.Path(), bounces)
	if _, err := Load(c.Dir()); err == nil || !strings.Contains(err.Error(), "outside the campaign folder") {
		t.Errorf("got %v, want write_to refused as outside the campaign folder", err)
	}
}

// appendFile appends text to the file at path.
func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
