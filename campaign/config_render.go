package campaign

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/mailrun/mailrun/render"
	"github.com/mailrun/mailrun/sender"
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

// SenderConfig maps the smtp section to sender.Config, with the password
// read by Password. The error names the missing variable or file.
func (c *Campaign) SenderConfig() (sender.Config, error) {
	pw, err := c.Password("smtp")
	if err != nil {
		return sender.Config{}, err
	}
	s := c.SMTP
	return sender.Config{
		Host: s.Host, Port: s.Port, Security: s.Security, CAFile: c.join(s.CAFile),
		Username: s.Username, Password: pw, Auth: s.Auth, HELO: s.HELO,
		Protocol: s.Protocol, Timeout: c.Send.Timeout,
	}, nil
}

// PoolConfig maps the send section to sender.PoolConfig. The error names a
// bad rate.
func (c *Campaign) PoolConfig() (sender.PoolConfig, error) {
	r, err := c.Rate()
	if err != nil {
		return sender.PoolConfig{}, err
	}
	d := c.Send
	return sender.PoolConfig{
		Concurrency: d.Concurrency, PerConnection: d.PerConnection, Rate: r, Burst: d.Burst,
		Retries: d.Retries, Backoff: d.Backoff, MaxRcpt: d.MaxRcpt,
	}, nil
}

// join makes a campaign path usable by packages that open files themselves;
// Load has already checked that it stays inside the folder.
func (c *Campaign) join(name string) string {
	if name == "" {
		return ""
	}
	return filepath.Join(c.dir, name)
}
