package campaign

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/mailrun/mailrun/sender"
)

// OverrideSMTP replaces the relay of the smtp section with the one in
// rawURL, e.g. "smtps://news@smtp.acme.example:465" (implicit TLS),
// "smtp://smtp.acme.example:587" (STARTTLS) or
// "smtp://127.0.0.1:1025?security=none". Query keys auth, helo, security
// and protocol set those fields too; "lmtp://" selects LMTP. A password in
// the URL is refused: it would end up in shell history and process lists.
// The smtp section's username and password go to the new host only when
// the URL names a user (its password still comes from password_env or
// password_file).
func (c *Campaign) OverrideSMTP(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("--smtp: not a URL")
	}
	s := c.SMTP
	switch u.Scheme {
	case "smtp":
		s.Security, s.Protocol = "starttls", "smtp"
	case "smtps":
		s.Security, s.Protocol = "tls", "smtp"
	case "lmtp":
		s.Security, s.Protocol = "none", "lmtp"
	default:
		return fmt.Errorf("--smtp: scheme %q: want smtp, smtps or lmtp", u.Scheme)
	}
	if _, ok := u.User.Password(); ok {
		return fmt.Errorf("--smtp: a password in the URL is refused; use smtp.password_env or smtp.password_file")
	}
	if u.Hostname() == "" {
		return fmt.Errorf("--smtp: no host")
	}
	s.Host = u.Hostname()
	s.Port = 0
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("--smtp: bad port %q", p)
		}
		s.Port = n
	}
	// The campaign's login belongs to the campaign's relay: another host
	// gets it only when the URL names the user, so a --smtp pointed at a
	// test sink or another provider never receives the production password.
	if u.User != nil {
		s.Username = u.User.Username()
	} else if s.Host != c.SMTP.Host {
		s.Username, s.PasswordEnv, s.PasswordFile = "", "", ""
	}
	q := u.Query()
	for key := range q {
		switch key {
		case "security":
			s.Security = q.Get(key)
		case "auth":
			s.Auth = q.Get(key)
		case "helo":
			s.HELO = q.Get(key)
		case "protocol":
			s.Protocol = q.Get(key)
		default:
			return fmt.Errorf("--smtp: unknown parameter %q (want security, auth, helo or protocol)", key)
		}
	}
	if s.Port == 0 {
		switch {
		case s.Protocol == "lmtp":
			s.Port = 24
		case s.Security == "tls":
			s.Port = 465
		default:
			s.Port = 587
		}
	}
	c.SMTP = s
	return nil
}

// SenderConfig maps the smtp and send sections to the sender package,
// reading the password from its environment variable or file. debug, when
// not nil, receives the protocol trace (AUTH redacted).
func (c *Campaign) SenderConfig(debug io.Writer) (sender.Config, sender.PoolConfig, error) {
	if strings.TrimSpace(c.SMTP.Host) == "" {
		return sender.Config{}, sender.PoolConfig{}, fmt.Errorf("%s: smtp.host: no relay configured (add an smtp section or use --smtp URL)", c.base())
	}
	pw, err := c.Password("smtp")
	if err != nil {
		return sender.Config{}, sender.PoolConfig{}, err
	}
	rate, err := c.Rate()
	if err != nil {
		return sender.Config{}, sender.PoolConfig{}, err
	}
	auth := c.SMTP.Auth
	if c.SMTP.Username == "" && (auth == "" || auth == "auto") {
		auth = "none" // auto means "whatever the server offers", for a login we have
	}
	cfg := sender.Config{
		Host:     c.SMTP.Host,
		Port:     c.SMTP.Port,
		Security: c.SMTP.Security,
		CAFile:   c.File(c.SMTP.CAFile),
		Username: c.SMTP.Username,
		Password: pw,
		Auth:     auth,
		HELO:     c.SMTP.HELO,
		Protocol: c.SMTP.Protocol,
		Timeout:  c.Send.Timeout,
		Debug:    debug,
		// A nil Chunking is the default: on.
		NoChunking: c.SMTP.Chunking != nil && !*c.SMTP.Chunking,
	}
	pc := sender.PoolConfig{
		Concurrency:   c.Send.Concurrency,
		PerConnection: c.Send.PerConnection,
		Rate:          rate,
		Burst:         c.Send.Burst,
		Retries:       c.Send.Retries,
		Backoff:       c.Send.Backoff,
		MaxRcpt:       c.Send.MaxRcpt,
	}
	return cfg, pc, nil
}
