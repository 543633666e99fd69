package mailing

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/sender"
)

// ErrNoRelay is matched by the error of SenderConfig when the campaign
// names no relay.
var ErrNoRelay = errors.New("no relay configured")

// settingError is a setting of the campaign that the wire or the mailbox
// refuses, placed on its line of the campaign file; it unwraps to the
// refusal (a *sender.ConfigError, ErrNoRelay, ...).
type settingError struct {
	p   campaign.Problem
	err error
}

func (e *settingError) Error() string { return e.p.String() }
func (e *settingError) Unwrap() error { return e.err }

// Relay builds the client of c's relay and its pool settings (SenderConfig,
// then sender.New). A setting sender.New refuses comes back placed on its
// line of the campaign file, as check prints it.
func Relay(c *campaign.Campaign, debug io.Writer) (*sender.Client, sender.PoolConfig, error) {
	cfg, pc, err := SenderConfig(c, debug)
	if err != nil {
		return nil, pc, err
	}
	client, err := sender.New(cfg)
	if err != nil {
		return nil, pc, placeRelay(c, err)
	}
	return client, pc, nil
}

// placeRelay puts a *sender.ConfigError on the line of its smtp key.
func placeRelay(c *campaign.Campaign, err error) error {
	var ce *sender.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	return &settingError{c.Problem("smtp."+ce.Field, strings.TrimPrefix(ce.Error(), "smtp: ")), err}
}

// OverrideSMTP replaces the relay of c's smtp section with the one in
// rawURL, e.g. "smtps://news@smtp.acme.example:465" (implicit TLS),
// "smtp://smtp.acme.example:587" (STARTTLS) or
// "smtp://127.0.0.1:1025?security=none". Query keys auth, helo, security
// and protocol set those fields too; "lmtp://" selects LMTP. A URL without
// a port leaves it to sender.DefaultPort, as the smtp section does. A
// password in the URL is refused: it would end up in shell history and
// process lists. The smtp section's username and password go to the new
// host only when the URL names a user (its password still comes from
// password_env or password_file).
func OverrideSMTP(c *campaign.Campaign, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return errors.New("not a URL")
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
		return fmt.Errorf("scheme %q: want smtp, smtps or lmtp", u.Scheme)
	}
	if _, ok := u.User.Password(); ok {
		return errors.New("a password in the URL is refused; use smtp.password_env or smtp.password_file")
	}
	if u.Hostname() == "" {
		return errors.New("no host")
	}
	s.Host = u.Hostname()
	s.Port = 0
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("bad port %q", p)
		}
		s.Port = n
	}
	// The campaign's login belongs to the campaign's relay: another host
	// gets it only when the URL names the user, so a relay URL pointed at a
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
			return fmt.Errorf("unknown parameter %q (want security, auth, helo or protocol)", key)
		}
	}
	c.SMTP = s
	return nil
}

// SenderConfig maps the smtp and send sections to the sender package,
// reading the password from its environment variable or file. debug, when
// not nil, receives the protocol trace (AUTH redacted). The wire's defaults
// (port, security, auth) are sender.New's to fill in.
func SenderConfig(c *campaign.Campaign, debug io.Writer) (sender.Config, sender.PoolConfig, error) {
	if strings.TrimSpace(c.SMTP.Host) == "" {
		return sender.Config{}, sender.PoolConfig{}, &settingError{c.Problem("smtp.host", ErrNoRelay.Error()), ErrNoRelay}
	}
	pw, err := c.Password("smtp")
	if err != nil {
		return sender.Config{}, sender.PoolConfig{}, err
	}
	cfg, pc, err := relayConfig(c)
	cfg.Password, cfg.Debug = pw, debug
	return cfg, pc, err
}

// relayConfig is SenderConfig without the password.
func relayConfig(c *campaign.Campaign) (sender.Config, sender.PoolConfig, error) {
	rate, err := c.Rate()
	if err != nil {
		return sender.Config{}, sender.PoolConfig{}, err
	}
	cfg := sender.Config{
		Host:     c.SMTP.Host,
		Port:     c.SMTP.Port,
		Security: c.SMTP.Security,
		CAFile:   c.File(c.SMTP.CAFile),
		Username: c.SMTP.Username,
		Auth:     c.SMTP.Auth,
		HELO:     c.SMTP.HELO,
		Protocol: c.SMTP.Protocol,
		Timeout:  c.Send.Timeout,
		// The wire's default (30s) when unset.
		ConnectTimeout: c.SMTP.ConnectTimeout,
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

// relayProblems checks the smtp section against the wire's own rules
// (sender.New: security, auth, protocol, port, AUTH without TLS only to
// loopback), so that check passes exactly the settings send accepts. The
// password's presence is campaign.Load's to report; a stand-in lets New
// judge the rest.
func relayProblems(c *campaign.Campaign) []campaign.Problem {
	if strings.TrimSpace(c.SMTP.Host) == "" {
		return nil
	}
	cfg, _, err := relayConfig(c)
	if err != nil {
		return nil // the send section's problem, reported by Load
	}
	cfg.Password = "stand-in"
	_, err = sender.New(cfg)
	var se *settingError
	if !errors.As(placeRelay(c, err), &se) {
		if err != nil {
			return []campaign.Problem{c.Problem("smtp", err.Error())}
		}
		return nil
	}
	for _, p := range c.Problems() {
		if p.Field == se.p.Field && !p.Warning {
			return nil // Load said it already (a missing ca_file, say)
		}
	}
	return []campaign.Problem{se.p}
}
