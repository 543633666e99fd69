package campaign

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	if err := Init(dir); err != nil {
		t.Fatal(err)
	}
	// mailing's TestInitChecksClean renders it too.
	if ps := mustLoad(t, dir).Problems(); len(ps) != 0 {
		t.Fatalf("got problems %v in the initial campaign, want none", ps)
	}
	// A second Init must not touch the edited campaign.
	edited := []byte("edited\n")
	if err := os.WriteFile(filepath.Join(dir, "body.md"), edited, 0o644); err != nil {
		t.Fatal(err)
	}
	err := Init(dir)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("got %v, want a refusal to overwrite", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "body.md")); !bytes.Equal(got, edited) {
		t.Errorf("got body.md %q, want it untouched", got)
	}
}
