package campaign

import (
	"bytes"
	"context"
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
	c := mustLoad(t, dir)
	var out bytes.Buffer
	rep, err := Check(context.Background(), c, &out)
	if err != nil || rep.Errors != 0 || rep.OK != 2 {
		t.Fatalf("check of the initial campaign: got %+v, %v\n%s", rep, err, out.String())
	}
	// A second Init must not touch the edited campaign.
	edited := []byte("edited\n")
	if err := os.WriteFile(filepath.Join(dir, "body.md"), edited, 0o644); err != nil {
		t.Fatal(err)
	}
	err = Init(dir)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("got %v, want a refusal to overwrite", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "body.md")); !bytes.Equal(got, edited) {
		t.Errorf("got body.md %q, want it untouched", got)
	}
}
