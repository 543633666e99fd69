package campaign

import (
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailrun/mailrun/render"
)

// checker collects the problems of one campaign file while validate walks
// its sections.
type checker struct {
	c    *Campaign
	file string
	root *os.Root
}

// add records a problem on a key path, placed on that key's line.
func (k *checker) add(field string, warning bool, format string, args ...any) {
	k.c.problems = append(k.c.problems, Problem{File: k.file, Line: k.c.line(field), Field: field,
		Message: fmt.Sprintf(format, args...), Warning: warning})
}

func (k *checker) errorf(field, format string, args ...any) { k.add(field, false, format, args...) }

// exists checks that a campaign file is a regular file inside the folder;
// an empty name is not checked.
func (k *checker) exists(field, name string) bool {
	if name == "" {
		return false
	}
	fi, err := k.root.Stat(name)
	switch {
	case err != nil:
		k.errorf(field, "%s", fileErr(name, err))
		return false
	case !fi.Mode().IsRegular():
		k.errorf(field, "%s is not a regular file", name)
		return false
	}
	return true
}

// validate checks everything that needs no recipient and appends problems.
// What the wire decides (the smtp section's security, auth, protocol and
// port) is the orchestrator's to check with sender.New.
func (c *Campaign) validate(file string) {
	root, err := os.OpenRoot(c.dir)
	if err != nil {
		c.problems = append(c.problems, Problem{File: file, Message: "open campaign folder: " + err.Error()})
		return
	}
	defer root.Close()
	k := &checker{c: c, file: file, root: root}
	// The name names the journal next to the campaign file.
	if c.Name != filepath.Base(c.Name) || c.Name == "." || c.Name == ".." || strings.ContainsAny(c.Name, `/\`) {
		k.errorf("name", "%q must be a plain name: it names the journal file next to the campaign", c.Name)
	}
	c.validateAddresses(k)
	c.validateFiles(k)
	c.validateHeaders(k)
	c.validateMode(k)
	c.validateSMTP(k)
	c.validateSend(k)
	c.validateDKIM(k)
	c.validateUnsubscribe(k)
	for i, s := range c.Suppress {
		k.exists("suppress."+strconv.Itoa(i), s)
	}
	c.validateBounces(k)
}

// validateAddresses checks the header values of the campaign file: the
// addresses must parse, a subject is set, and nothing carries CR or LF.
func (c *Campaign) validateAddresses(k *checker) {
	for _, h := range []struct{ field, v string }{{"name", c.Name}, {"from", c.From}, {"reply_to", c.ReplyTo},
		{"sender", c.Sender}, {"subject", c.Subject}, {"group.to", c.Group.To}, {"recipients.name", c.Recipients.Name}} {
		if strings.ContainsAny(h.v, "\r\n\x00") {
			k.errorf(h.field, "line breaks are not allowed in a header value")
		}
	}
	if c.From == "" {
		k.errorf("from", "missing: the From address is required")
	} else if list, err := mail.ParseAddressList(c.From); err != nil {
		k.errorf("from", "invalid address list: %v", err)
	} else if len(list) > 1 && c.Sender == "" {
		k.errorf("sender", "required because from lists %d mailboxes (RFC 5322 section 3.6.2)", len(list))
	}
	if c.ReplyTo != "" {
		if _, err := mail.ParseAddressList(c.ReplyTo); err != nil {
			k.errorf("reply_to", "invalid address list: %v", err)
		}
	}
	if c.Sender != "" {
		if _, err := mail.ParseAddress(c.Sender); err != nil {
			k.errorf("sender", "invalid mailbox: %v", err)
		}
	}
	if strings.TrimSpace(c.Subject) == "" {
		k.errorf("subject", "missing: a subject is required")
	}
}

// validateFiles checks that the list, the body files and the static
// attachments are regular files inside the folder, and that the list's
// delimiter and encoding are ones it can be read with.
func (c *Campaign) validateFiles(k *checker) {
	if c.Recipients.File == "" {
		k.errorf("recipients", "missing: the recipient CSV file is required")
	} else {
		k.exists("recipients.file", c.Recipients.File)
	}
	if _, err := parseDelimiter(c.Recipients.Delimiter); err != nil {
		k.errorf("recipients.delimiter", "%v", err)
	}
	if _, err := lookupCharset(c.Recipients.Encoding); err != nil {
		k.errorf("recipients.encoding", "%v", err)
	}
	switch {
	case c.Body.Markdown == "" && c.Body.HTML == "":
		k.errorf("body", "set exactly one of markdown and html")
	case c.Body.Markdown != "" && c.Body.HTML != "":
		k.errorf("body", "set only one of markdown and html, not both")
	}
	k.exists("body.markdown", c.Body.Markdown)
	k.exists("body.html", c.Body.HTML)
	k.exists("body.text", c.Body.Text)
	k.exists("body.layout", c.Body.Layout)
	for i, a := range c.Attachments {
		field := "attachments." + strconv.Itoa(i)
		if strings.TrimSpace(a) == "" {
			k.errorf(field, "empty path")
		} else if !strings.Contains(a, "{{") { // templates are checked per row by render
			k.exists(field, a)
		}
	}
}

// validateHeaders checks the extra headers with render's rule for their
// names (render.CheckHeaderName) and refuses line breaks in their values.
func (c *Campaign) validateHeaders(k *checker) {
	for name, v := range c.Headers {
		field := "headers." + name
		if err := render.CheckHeaderName(name); err != nil {
			k.errorf(field, "%v", err)
		} else if strings.ContainsAny(v, "\r\n\x00") {
			k.errorf(field, "line breaks are not allowed in a header value")
		}
	}
}

// validateMode checks mode and the group section that goes with it.
func (c *Campaign) validateMode(k *checker) {
	switch c.Mode {
	case "individual":
		if c.Group.To != "" {
			k.add("group.to", true, "ignored in mode individual")
		}
	case "group":
		if c.Group.To == "" {
			k.errorf("group.to", "missing: mode group needs the visible To address")
		} else if _, err := mail.ParseAddressList(c.Group.To); err != nil {
			k.errorf("group.to", "invalid address list: %v", err)
		}
		if c.Unsubscribe.URL != "" {
			k.add("unsubscribe", true, "group messages carry no per-recipient List-Unsubscribe header")
		}
	default:
		k.errorf("mode", "%q is not individual or group", c.Mode)
	}
}

// validateUnsubscribe checks the one-click pair of RFC 8058: an https URL,
// and a mailto only besides it.
func (c *Campaign) validateUnsubscribe(k *checker) {
	if u := c.Unsubscribe.URL; u != "" {
		if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(u)), "https://") {
			k.errorf("unsubscribe.url", "must start with https:// (RFC 8058 one-click)")
		}
		if strings.ContainsAny(u, "\r\n\x00 ") {
			k.errorf("unsubscribe.url", "spaces and line breaks are not allowed")
		}
	} else if c.Unsubscribe.Mailto != "" {
		k.errorf("unsubscribe.url", "missing: one-click unsubscribe (RFC 8058) needs an https URL besides the mailto")
	}
	if strings.ContainsAny(c.Unsubscribe.Mailto, "\r\n\x00 <>") {
		k.errorf("unsubscribe.mailto", "spaces, angle brackets and line breaks are not allowed")
	}
}

func (c *Campaign) validateSMTP(k *checker) {
	// Security, auth, protocol, port, HELO and AUTH without TLS are the
	// wire's rules: the orchestrator checks this section with sender.New.
	s := c.SMTP
	c.validateCredentials("smtp", s.Username, s.PasswordEnv, s.PasswordFile, s.Auth == "none", k)
	k.exists("smtp.ca_file", s.CAFile)
}

// validateCredentials applies the rules shared by smtp and bounces: one
// password source, named as a variable, not written in the file.
func (c *Campaign) validateCredentials(sec, user, env, file string, noAuth bool, k *checker) {
	if env != "" && file != "" {
		k.errorf(sec+".password_file", "set only one of password_env and password_file")
	}
	if user != "" && !noAuth {
		if env == "" && file == "" {
			k.errorf(sec+".username", "needs password_env or password_file")
		}
	}
	switch {
	case env != "" && !validEnvName(env):
		// Never echo it: a value that is no variable name is most likely
		// the password itself, pasted in the wrong place.
		k.errorf(sec+".password_env", "must name an environment variable (letters, digits, _), not hold the password")
	case env != "":
		if _, ok := os.LookupEnv(env); !ok {
			k.add(sec+".password_env", true, "environment variable %s is not set", env)
		}
	}
	k.exists(sec+".password_file", file)
}

// sendBounds are the largest sane values of the send section: past them a
// setting is a typo or would hurt the relay (a million connections), and
// the message says what the limit is for.
var sendBounds = []struct {
	field string
	max   int
	why   string
}{
	{"send.burst", 10000, "messages sent at once past the rate"},
	{"send.concurrency", 100, "connections to one relay; relays limit clients to a few dozen"},
	{"send.per_connection", 1000000, "messages on one connection"},
	{"send.retries", 100, "attempts for a temporary failure"},
	{"send.max_rcpt", 1000, "recipients per transaction; RFC 5321 section 4.5.3.1.8 asks relays for 100"},
	{"send.abort_after", 1000000, "permanent failures in a row"},
}

// durationBounds are the largest sane durations of the send section.
var durationBounds = map[string]time.Duration{"send.backoff": time.Hour, "send.timeout": time.Hour,
	"send.give_up_after": 24 * time.Hour, "smtp.connect_timeout": 10 * time.Minute}

func (c *Campaign) validateSend(k *checker) {
	d := c.Send
	if _, err := parseRate(d.Rate); err != nil {
		k.errorf("send.rate", "%v", err)
	}
	values := map[string]int{"send.burst": d.Burst, "send.concurrency": d.Concurrency, "send.per_connection": d.PerConnection,
		"send.retries": d.Retries, "send.max_rcpt": d.MaxRcpt, "send.abort_after": d.AbortAfter}
	for _, b := range sendBounds {
		switch n := values[b.field]; {
		case n < 0:
			k.errorf(b.field, "must not be negative")
		case n > b.max:
			k.errorf(b.field, "%d is more than %d (%s)", n, b.max, b.why)
		}
	}
	for field, v := range map[string]time.Duration{"send.backoff": d.Backoff, "send.timeout": d.Timeout,
		"send.give_up_after": d.GiveUpAfter, "smtp.connect_timeout": c.SMTP.ConnectTimeout} {
		switch max := durationBounds[field]; {
		case v < 0:
			k.errorf(field, "must not be negative")
		case v > max:
			k.errorf(field, "%s is more than %s", v, max)
		}
	}
}

func (c *Campaign) validateDKIM(k *checker) {
	d := c.DKIM
	if d.Domain == "" && d.Selector == "" && d.KeyFile == "" && len(d.Headers) == 0 {
		return
	}
	if d.Domain == "" {
		k.errorf("dkim.domain", "missing: required to sign")
	}
	if d.Selector == "" {
		k.errorf("dkim.selector", "missing: required to sign")
	}
	if d.KeyFile == "" {
		k.errorf("dkim.key_file", "missing: required to sign")
	} else if k.exists("dkim.key_file", d.KeyFile) {
		if _, warn, err := c.dkimSigner(); err != nil {
			k.errorf("dkim.key_file", "%v", err)
		} else if warn != "" {
			k.add("dkim.key_file", true, "%s", warn)
		}
	}
	if err := render.CheckDKIMHeaders(d.Headers); err != nil {
		k.errorf("dkim.headers", "%v", err)
	}
}

func (c *Campaign) validateBounces(k *checker) {
	b := c.Bounces
	if b.Host == "" {
		if b != (Bounces{}) {
			k.errorf("bounces.host", "missing: required to read bounces")
		}
		return
	}
	// Protocol, security, port and plaintext only to loopback are the
	// mailbox's rules: the orchestrator checks them with mailbox.Check.
	after := []string{"move", "delete", "keep"}
	if b.Protocol == "pop3" {
		after = []string{"delete", "keep"}
	}
	if !slices.Contains(after, b.After) {
		k.errorf("bounces.after", "%q is not %s", b.After, strings.Join(after, ", "))
	}
	c.validateCredentials("bounces", b.Username, b.PasswordEnv, b.PasswordFile, false, k)
	k.exists("bounces.ca_file", b.CAFile)
	if b.WriteTo == "" {
		k.errorf("bounces.write_to", "missing: the suppression file hard bounces are appended to")
	} else {
		if !filepath.IsLocal(b.WriteTo) || !staysInside(c.dir, b.WriteTo) {
			k.errorf("bounces.write_to", "%s is outside the campaign folder", b.WriteTo)
		}
		if !slices.Contains(c.Suppress, b.WriteTo) {
			k.add("bounces.write_to", true, "%s is not listed under suppress, so bounced addresses would still be mailed", b.WriteTo)
		}
	}
}
