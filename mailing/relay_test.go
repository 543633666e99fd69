package mailing

import (
	"testing"

	"github.com/mailrun/mailrun/campaign"
)

// --smtp pointed at another host must not carry the campaign's login
// there, unless the URL names the user.
func TestOverrideSMTPCredentials(t *testing.T) {
	c := &campaign.Campaign{SMTP: campaign.SMTP{Host: "smtp.acme.example", Port: 587, Security: "starttls", Username: "news@acme.example", PasswordEnv: "SMTP_PASSWORD"}}
	for _, tc := range []struct {
		url, user, env string
	}{
		{"smtp://127.0.0.1:1025?security=none", "", ""},
		{"smtps://other@mail.partner.example", "other", "SMTP_PASSWORD"},
		{"smtps://smtp.acme.example:465", "news@acme.example", "SMTP_PASSWORD"},
	} {
		cc := *c
		if err := OverrideSMTP(&cc, tc.url); err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		if cc.SMTP.Username != tc.user || cc.SMTP.PasswordEnv != tc.env {
			t.Errorf("%s: got user %q, password_env %q; want %q, %q", tc.url, cc.SMTP.Username, cc.SMTP.PasswordEnv, tc.user, tc.env)
		}
	}
}
