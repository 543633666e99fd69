package campaign

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/mailrun/mailrun/render"
)

// RenderConfig maps the campaign to render.Config and loads the DKIM key.
// It fails only when the key cannot be loaded (the error names the file).
func (c *Campaign) RenderConfig() (render.Config, error) {
	rc := render.Config{
		Dir:         c.dir,
		From:        c.From,
		ReplyTo:     c.ReplyTo,
		Sender:      c.Sender,
		Subject:     c.Subject,
		Name:        c.Recipients.Name,
		Markdown:    c.Body.Markdown,
		HTML:        c.Body.HTML,
		Text:        c.Body.Text,
		Layout:      c.Body.Layout,
		InlineCSS:   c.Body.InlineCSS,
		Attachments: c.Attachments,
		Headers:     c.Headers,
		Vars:        c.Vars,
		Group:       render.Group{To: c.Group.To, Visible: c.Group.Visible},
		Unsubscribe: render.Unsubscribe{
			URL:    strings.TrimSpace(c.Unsubscribe.URL),
			Mailto: strings.TrimPrefix(strings.TrimSpace(c.Unsubscribe.Mailto), "mailto:"),
		},
	}
	if c.DKIM.Domain != "" {
		signer, _, err := c.dkimSigner()
		if err != nil {
			return render.Config{}, fmt.Errorf("dkim: %w", err)
		}
		rc.DKIM = &render.DKIM{Domain: c.DKIM.Domain, Selector: c.DKIM.Selector, Signer: signer, Headers: c.DKIM.Headers}
	}
	return rc, nil
}

// File returns the path of the campaign file name (relative to Dir) as
// the user would type it from where they stand (Dir as given to Load): for
// messages ("examples/newsletter/recipients.csv:7: ...") and for packages
// that open it themselves, e.g. smtp.ca_file for sender or
// bounces.write_to for AppendSuppress. Load has checked that the names in
// the campaign stay inside the folder; "" stays "".
func (c *Campaign) File(name string) string {
	if name == "" {
		return ""
	}
	return filepath.Join(c.dir, name)
}
