package campaign

import (
	"strings"
	"testing"

	"github.com/mailrun/mailrun/internal/campaigntest"
)

// baseYAML and writeFiles are the shared campaign fixture.
const baseYAML = campaigntest.BaseYAML

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	return campaigntest.WriteFiles(t, files)
}

// mustLoad loads a campaign that must have no errors.
func mustLoad(t *testing.T, dir string) *Campaign {
	t.Helper()
	c, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func containsAll(t *testing.T, got string, want []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("got\n%s\nwant it to contain %q", got, w)
		}
	}
}
