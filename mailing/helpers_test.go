package mailing

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/internal/campaigntest"
)

// baseYAML and writeFiles are the shared campaign fixture.
const baseYAML = campaigntest.BaseYAML

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	return campaigntest.WriteFiles(t, files)
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
