package campaign

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// DefaultFile is the campaign file looked for when Load is given a folder.
const DefaultFile = "campaign.yaml"

// Campaign is one decoded and validated campaign file. Field names follow the
// YAML keys. Paths in it are relative to Dir and never leave it. A Campaign
// holds no secret: passwords are read on demand by Password.
type Campaign struct {
	// Name names the run (journal, logs); default: the file's base name.
	Name string `yaml:"name"`
	// From is the From header, an RFC 5322 address list.
	From string `yaml:"from"`
	// ReplyTo is an optional Reply-To address list.
	ReplyTo string `yaml:"reply_to"`
	// Sender is the Sender mailbox, required when From lists several
	// mailboxes (RFC 5322 section 3.6.2).
	Sender string `yaml:"sender"`
	// Subject is a text/template.
	Subject string `yaml:"subject"`
	// Recipients says where the recipient CSV is and how to read it.
	Recipients RecipientsFile `yaml:"recipients"`
	// Body names the body template files.
	Body Body `yaml:"body"`
	// Attachments are file path templates, e.g. "invoices/{{.invoice}}.pdf".
	Attachments []string `yaml:"attachments"`
	// Headers are extra header fields whose values are text/templates.
	Headers map[string]string `yaml:"headers"`
	// Vars are campaign-wide values, available as {{.Vars.name}}.
	Vars map[string]any `yaml:"vars"`
	// Mode is "individual" (default: one message per recipient) or "group"
	// (one message for all).
	Mode string `yaml:"mode"`
	// Group shapes the group message.
	Group Group `yaml:"group"`
	// SMTP is the relay used by send; unused by check and preview.
	SMTP SMTP `yaml:"smtp"`
	// Send shapes the delivery: rate, concurrency, retries.
	Send Send `yaml:"send"`
	// DKIM signs every message when Domain is set.
	DKIM DKIM `yaml:"dkim"`
	// Unsubscribe adds one-click List-Unsubscribe headers (RFC 8058).
	Unsubscribe Unsubscribe `yaml:"unsubscribe"`
	// Suppress lists files of addresses never to send to.
	Suppress []string `yaml:"suppress"`
	// Bounces is the mailbox that delivery status notifications reach.
	Bounces Bounces `yaml:"bounces"`

	path     string         // the campaign file as given to Load
	dir      string         // the campaign folder
	problems []Problem      // warnings and errors found by Load, sorted by line
	keys     map[string]int // YAML key path -> line, for problems found later
}

// RecipientsFile locates the recipient CSV. In YAML it is either a file name
// (`recipients: list.csv`) or a mapping with the keys below.
type RecipientsFile struct {
	// File is the CSV file, relative to the campaign folder.
	File string `yaml:"file"`
	// Email is the column holding the address; default "email".
	Email string `yaml:"email"`
	// Name is an optional text/template for the display name.
	Name string `yaml:"name"`
}

// Body names the body template files. Exactly one of Markdown and HTML is set.
type Body struct {
	Markdown string `yaml:"markdown"`
	HTML     string `yaml:"html"`
	// Text is an optional text/template for the text/plain part; without it
	// the text is derived from the Markdown or HTML.
	Text string `yaml:"text"`
	// Layout is an optional html/template wrapping the body as {{.Body}}.
	Layout string `yaml:"layout"`
}

// Group is the visible side of a group message.
type Group struct {
	// To is the visible To header of the group message.
	To string `yaml:"to"`
	// Visible lists the recipients in To instead of Bcc.
	Visible bool `yaml:"visible"`
}

// SMTP is the relay section. The password never lives in the campaign file:
// it comes from PasswordEnv or PasswordFile (see Campaign.Password).
type SMTP struct {
	Host string `yaml:"host"`
	// Port 0 is sender.DefaultPort's: 587 for starttls, 465 for tls, 25
	// for none, 24 for lmtp.
	Port int `yaml:"port"`
	// Security is starttls (default), tls or none.
	Security     string `yaml:"security"`
	CAFile       string `yaml:"ca_file"`
	Username     string `yaml:"username"`
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
	// Auth is auto (default), plain, login, cram-md5, xoauth2 or none.
	Auth string `yaml:"auth"`
	HELO string `yaml:"helo"`
	// Protocol is smtp (default) or lmtp.
	Protocol string `yaml:"protocol"`
	// Chunking (default true) sends each message with its envelope in one
	// round trip (BDAT) when the server offers CHUNKING and PIPELINING;
	// false keeps to DATA, which can retry a message whose connection
	// failed before its final "." (see sender.Config.NoChunking).
	Chunking *bool `yaml:"chunking"`
}

// Send shapes delivery. Zero values are replaced by the defaults at Load.
type Send struct {
	// Rate is "N/s", "N/m" or "N/h"; empty means no limit (see Campaign.Rate).
	Rate string `yaml:"rate"`
	// Burst defaults to 10 when the rate allows 10 or more per second, else 1.
	Burst int `yaml:"burst"`
	// Concurrency is the number of simultaneous connections; default 4.
	Concurrency int `yaml:"concurrency"`
	// PerConnection is messages per connection before redialling; default 500.
	PerConnection int `yaml:"per_connection"`
	// Retries is attempts for temporary failures; default 5.
	Retries int `yaml:"retries"`
	// Backoff is the first retry delay; default 2s.
	Backoff time.Duration `yaml:"backoff"`
	// Timeout bounds each SMTP command; 0 is the sender's default (60s).
	Timeout time.Duration `yaml:"timeout"`
	// MaxRcpt is recipients per transaction in group mode; 0 is the
	// sender's default (100).
	MaxRcpt int `yaml:"max_rcpt"`
	// AbortAfter is consecutive permanent failures that stop the run; default 50.
	AbortAfter int `yaml:"abort_after"`
}

// DKIM configures signing (RFC 6376). It is active when Domain is set.
type DKIM struct {
	Domain   string `yaml:"domain"`
	Selector string `yaml:"selector"`
	// KeyFile is a PEM private key: RSA (PKCS#1 or PKCS#8) or Ed25519 (PKCS#8).
	KeyFile string `yaml:"key_file"`
	// Headers are the signed header fields; empty means render's default
	// (render.DefaultDKIMHeaders, plus Sender, Reply-To and the
	// List-Unsubscribe pair when a message has them).
	Headers []string `yaml:"headers"`
}

// Unsubscribe holds the List-Unsubscribe templates (RFC 2369, RFC 8058).
type Unsubscribe struct {
	// URL is an https URL template for one-click unsubscribe.
	URL string `yaml:"url"`
	// Mailto is an optional template such as "unsub@acme.example?subject={{.id}}".
	Mailto string `yaml:"mailto"`
}

// Bounces is the mailbox that receives delivery status notifications.
type Bounces struct {
	// Protocol is imap (default) or pop3.
	Protocol string `yaml:"protocol"`
	Host     string `yaml:"host"`
	// Port defaults by protocol and security (993/143 imap, 995/110 pop3).
	Port int `yaml:"port"`
	// Security is tls (default), starttls or none (loopback only).
	Security    string `yaml:"security"`
	CAFile      string `yaml:"ca_file"`
	Username    string `yaml:"username"`
	PasswordEnv string `yaml:"password_env"`
	// PasswordFile is a file holding the password, inside the campaign folder.
	PasswordFile string `yaml:"password_file"`
	// Mailbox is the IMAP mailbox; default INBOX.
	Mailbox string `yaml:"mailbox"`
	// After is what happens to a processed message: move (imap default),
	// delete (pop3 default) or keep.
	After string `yaml:"after"`
	// WriteTo is the suppression file hard bounces are appended to.
	WriteTo string `yaml:"write_to"`
}

// Problem is one thing wrong (or, with Warning, suspicious) in a campaign
// file or a recipient row. It prints as "file:line: field: message".
type Problem struct {
	// File is relative to the campaign folder.
	File string
	// Line is the line in File (the CSV row for recipients); 0 if unknown.
	Line int
	// Field is the YAML key path ("smtp.port") or CSV column; may be empty.
	Field string
	// Message says what is wrong, without any secret.
	Message string
	// Warning marks a problem that does not stop a run.
	Warning bool
}

// String formats p as "file:line: field: message"; a warning has
// "warning: " before the message.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(p.Line))
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	if p.Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error makes a Problem usable as an error.
func (p Problem) Error() string { return p.String() }

// Problems is a list of problems used as an error; it prints one per line.
type Problems []Problem

// Error joins the problems, one per line.
func (ps Problems) Error() string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, "\n")
}

// HasErrors reports whether any problem is not a warning.
func (ps Problems) HasErrors() bool {
	return slices.ContainsFunc(ps, func(p Problem) bool { return !p.Warning })
}

// Load reads, decodes and validates the campaign file at path (or
// path/campaign.yaml when path is a folder).
//
// A file that cannot be read or decoded (YAML syntax, unknown keys, a plain
// password) gives a nil Campaign and an error, a Problems when lines are
// known. When the file decodes but validation finds errors, Load returns the
// Campaign AND a Problems error holding every problem, so that check can go
// on and report the recipients too; other callers must stop on any error.
// Warnings alone are not an error; they are in Campaign.Problems.
func Load(path string) (*Campaign, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, DefaultFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load campaign: %w", err)
	}
	file := filepath.Base(path)
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Problems{yamlProblem(file, err.Error(), nil)}
	}
	keys := keyLines(&root)

	var ps Problems
	for _, sec := range []string{"smtp", "bounces"} {
		if line, ok := keys[sec+".password"]; ok {
			ps = append(ps, Problem{File: file, Line: line, Field: sec + ".password",
				Message: "a password in the campaign file is refused: use password_env (an environment variable) or password_file"})
		}
	}
	c := &Campaign{path: path, dir: filepath.Dir(path)}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty file (io.EOF) reaches validation, which names every missing key.
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, msg := range te.Errors {
				p := yamlProblem(file, msg, keys)
				if strings.HasSuffix(p.Field, ".password") && p.Message == "unknown key" {
					continue // already explained above
				}
				ps = append(ps, p)
			}
		} else {
			ps = append(ps, yamlProblem(file, err.Error(), keys))
		}
	}
	if len(ps) > 0 {
		sortProblems(ps)
		return nil, ps
	}
	c.keys = keys
	c.defaults()
	c.validate(file)
	sortProblems(c.problems)
	if Problems(c.problems).HasErrors() {
		return c, Problems(c.problems)
	}
	return c, nil
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
var unknownFieldRE = regexp.MustCompile(`^field (\S+) not found in type \S+$`)

// yamlProblem turns one yaml.v3 message ("line 7: field x not found in type
// y") into a Problem; yaml.v3 exposes lines only inside its messages.
func yamlProblem(file, msg string, keys map[string]int) Problem {
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n  ")
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return Problem{File: file, Message: strings.TrimPrefix(msg, "yaml: ")}
	}
	line, _ := strconv.Atoi(m[1])
	p := Problem{File: file, Line: line, Message: m[2]}
	if u := unknownFieldRE.FindStringSubmatch(m[2]); u != nil {
		p.Field, p.Message = u[1], "unknown key"
		for path, l := range keys {
			if l == line && (path == u[1] || strings.HasSuffix(path, "."+u[1])) {
				p.Field = path
			}
		}
	}
	return p
}

// keyLines maps every key path ("smtp.port", "attachments.0") to its line.
func keyLines(root *yaml.Node) map[string]int {
	keys := map[string]int{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		join := func(k string) string {
			if prefix == "" {
				return k
			}
			return prefix + "." + k
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, prefix)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := join(n.Content[i].Value)
				keys[p] = n.Content[i].Line
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := join(strconv.Itoa(i))
				keys[p] = c.Line
				walk(c, p)
			}
		}
	}
	walk(root, "")
	return keys
}

func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
}

// UnmarshalYAML accepts both `recipients: file.csv` and the mapping form,
// refusing unknown keys as strictly as the rest of the file.
func (r *RecipientsFile) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		r.File = n.Value
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: recipients must be a file name or a mapping", n.Line)}}
	}
	var errs []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		switch k.Value {
		case "file", "email", "name":
		default:
			errs = append(errs, fmt.Sprintf("line %d: field %s not found in type campaign.RecipientsFile", k.Line, k.Value))
		}
	}
	if len(errs) > 0 {
		return &yaml.TypeError{Errors: errs}
	}
	type plain RecipientsFile // no UnmarshalYAML: no recursion
	return n.Decode((*plain)(r))
}

// Path is the campaign file.
func (c *Campaign) Path() string { return c.path }

// Dir is the campaign folder; every path of the campaign is relative to it.
func (c *Campaign) Dir() string { return c.dir }

// Problems returns the warnings and errors found by Load, sorted by line.
func (c *Campaign) Problems() []Problem { return slices.Clone(c.problems) }

func (c *Campaign) defaults() {
	if c.Name == "" {
		c.Name = strings.TrimSuffix(filepath.Base(c.path), filepath.Ext(c.path))
	}
	if c.Recipients.Email == "" {
		c.Recipients.Email = "email"
	}
	if c.Mode == "" {
		c.Mode = "individual"
	}
	// The smtp section's wire defaults (security, port, auth, protocol)
	// are sender.New's: one place, whether the relay comes from here or
	// from a URL.
	d := &c.Send
	if d.Burst == 0 {
		d.Burst = 1
		if r, err := parseRate(d.Rate); err == nil && (r == 0 || r >= 10) {
			d.Burst = 10
		}
	}
	setDefault(&d.Concurrency, 4)
	setDefault(&d.PerConnection, 500)
	setDefault(&d.Retries, 5)
	setDefault(&d.AbortAfter, 50)
	if d.Backoff == 0 {
		d.Backoff = 2 * time.Second
	}
	b := &c.Bounces
	if b.Host != "" {
		if b.Protocol == "" {
			b.Protocol = "imap"
		}
		if b.Security == "" {
			b.Security = "tls"
		}
		if b.Port == 0 {
			b.Port = map[string]int{"imap/tls": 993, "imap/starttls": 143, "imap/none": 143,
				"pop3/tls": 995, "pop3/starttls": 110, "pop3/none": 110}[b.Protocol+"/"+b.Security]
		}
		if b.Mailbox == "" && b.Protocol == "imap" {
			b.Mailbox = "INBOX"
		}
		if b.After == "" {
			b.After = "move"
			if b.Protocol == "pop3" {
				b.After = "delete"
			}
		}
	}
}

// line finds the line of a key path, or of its nearest parent; 0 if none.
func (c *Campaign) line(field string) int {
	for f := field; f != ""; {
		if l, ok := c.keys[f]; ok {
			return l
		}
		i := strings.LastIndexByte(f, '.')
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return 0
}

func setDefault(v *int, d int) {
	if *v == 0 {
		*v = d
	}
}

// Rate returns the send rate in messages per second; 0 means no limit.
// The error names the bad value.
func (c *Campaign) Rate() (float64, error) {
	r, err := parseRate(c.Send.Rate)
	if err != nil {
		return 0, fmt.Errorf("send.rate: %w", err)
	}
	return r, nil
}

var rateRE = regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*/\s*(s|m|h)\s*$`)

func parseRate(s string) (float64, error) {
	if strings.TrimSpace(s) == "" {
		return 0, nil
	}
	m := rateRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not N/s, N/m or N/h", s)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q: the rate must be a positive number", s)
	}
	return n / map[string]float64{"s": 1, "m": 60, "h": 3600}[m[2]], nil
}

// Password returns the password of section "smtp" or "bounces", read from
// the environment variable password_env or the file password_file (trailing
// newline removed). It returns "" and no error when the section has no
// username. Errors name the variable or file, never the secret.
func (c *Campaign) Password(section string) (string, error) {
	var user, env, file string
	switch section {
	case "smtp":
		user, env, file = c.SMTP.Username, c.SMTP.PasswordEnv, c.SMTP.PasswordFile
	case "bounces":
		user, env, file = c.Bounces.Username, c.Bounces.PasswordEnv, c.Bounces.PasswordFile
	default:
		return "", fmt.Errorf("password: unknown section %q", section)
	}
	switch {
	case env != "" && !validEnvName(env):
		return "", fmt.Errorf("%s.password_env: must name an environment variable, not hold the password", section)
	case env != "":
		pw, ok := os.LookupEnv(env)
		if !ok || pw == "" {
			return "", fmt.Errorf("%s.password_env: environment variable %s is not set", section, env)
		}
		return pw, nil
	case file != "":
		data, err := c.readFile(file)
		if err != nil {
			return "", fmt.Errorf("%s.password_file: %w", section, err)
		}
		pw := strings.TrimRight(string(data), "\r\n")
		if pw == "" {
			return "", fmt.Errorf("%s.password_file: %s is empty", section, file)
		}
		return pw, nil
	case user != "":
		return "", fmt.Errorf("%s: username without password_env or password_file", section)
	}
	return "", nil
}

// readFile reads a file of the campaign through os.Root, so that neither
// "..", an absolute path nor a symlink can leave the campaign folder.
func (c *Campaign) readFile(name string) ([]byte, error) {
	root, err := os.OpenRoot(c.dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return root.ReadFile(name)
}

// validate checks everything that needs no recipient and appends problems.
func (c *Campaign) validate(file string) {
	add := func(field string, warning bool, format string, args ...any) {
		c.problems = append(c.problems, Problem{File: file, Line: c.line(field), Field: field,
			Message: fmt.Sprintf(format, args...), Warning: warning})
	}
	errorf := func(field, format string, args ...any) { add(field, false, format, args...) }

	root, err := os.OpenRoot(c.dir)
	if err != nil {
		errorf("", "open campaign folder: %v", err)
		return
	}
	defer root.Close()
	// exists checks that a campaign file is a regular file inside the folder.
	exists := func(field, name string) bool {
		if name == "" {
			return false
		}
		fi, err := root.Stat(name)
		switch {
		case err != nil:
			errorf(field, "%s", fileErr(name, err))
			return false
		case !fi.Mode().IsRegular():
			errorf(field, "%s is not a regular file", name)
			return false
		}
		return true
	}

	// The name names the journal next to the campaign file.
	if c.Name != filepath.Base(c.Name) || c.Name == "." || c.Name == ".." || strings.ContainsAny(c.Name, `/\`) {
		errorf("name", "%q must be a plain name: it names the journal file next to the campaign", c.Name)
	}
	// Header values: addresses must parse, and nothing may carry CR or LF.
	for _, h := range []struct{ field, v string }{{"name", c.Name}, {"from", c.From}, {"reply_to", c.ReplyTo},
		{"sender", c.Sender}, {"subject", c.Subject}, {"group.to", c.Group.To}, {"recipients.name", c.Recipients.Name}} {
		if strings.ContainsAny(h.v, "\r\n\x00") {
			errorf(h.field, "line breaks are not allowed in a header value")
		}
	}
	if c.From == "" {
		errorf("from", "missing: the From address is required")
	} else if list, err := mail.ParseAddressList(c.From); err != nil {
		errorf("from", "invalid address list: %v", err)
	} else if len(list) > 1 && c.Sender == "" {
		errorf("sender", "required because from lists %d mailboxes (RFC 5322 section 3.6.2)", len(list))
	}
	if c.ReplyTo != "" {
		if _, err := mail.ParseAddressList(c.ReplyTo); err != nil {
			errorf("reply_to", "invalid address list: %v", err)
		}
	}
	if c.Sender != "" {
		if _, err := mail.ParseAddress(c.Sender); err != nil {
			errorf("sender", "invalid mailbox: %v", err)
		}
	}
	if strings.TrimSpace(c.Subject) == "" {
		errorf("subject", "missing: a subject is required")
	}

	// Recipients and body files.
	if c.Recipients.File == "" {
		errorf("recipients", "missing: the recipient CSV file is required")
	} else {
		exists("recipients.file", c.Recipients.File)
	}
	switch {
	case c.Body.Markdown == "" && c.Body.HTML == "":
		errorf("body", "set exactly one of markdown and html")
	case c.Body.Markdown != "" && c.Body.HTML != "":
		errorf("body", "set only one of markdown and html, not both")
	}
	exists("body.markdown", c.Body.Markdown)
	exists("body.html", c.Body.HTML)
	exists("body.text", c.Body.Text)
	exists("body.layout", c.Body.Layout)
	for i, a := range c.Attachments {
		field := "attachments." + strconv.Itoa(i)
		if strings.TrimSpace(a) == "" {
			errorf(field, "empty path")
		} else if !strings.Contains(a, "{{") { // templates are checked per row by render
			exists(field, a)
		}
	}
	for name, v := range c.Headers {
		field := "headers." + name
		switch {
		case !validHeaderName(name):
			errorf(field, "invalid header name (RFC 5322 section 2.2: printable ASCII without colon)")
		case reservedHeaders[strings.ToLower(name)]:
			errorf(field, "%s is set by mailrun and cannot be overridden", name)
		case strings.ContainsAny(v, "\r\n\x00"):
			errorf(field, "line breaks are not allowed in a header value")
		}
	}

	switch c.Mode {
	case "individual":
		if c.Group.To != "" {
			add("group.to", true, "ignored in mode individual")
		}
	case "group":
		if c.Group.To == "" {
			errorf("group.to", "missing: mode group needs the visible To address")
		} else if _, err := mail.ParseAddressList(c.Group.To); err != nil {
			errorf("group.to", "invalid address list: %v", err)
		}
		if c.Unsubscribe.URL != "" {
			add("unsubscribe", true, "group messages carry no per-recipient List-Unsubscribe header")
		}
	default:
		errorf("mode", "%q is not individual or group", c.Mode)
	}

	c.validateSMTP(errorf, add, exists)
	c.validateSend(errorf)
	c.validateDKIM(errorf, add, exists)

	if u := c.Unsubscribe.URL; u != "" {
		if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(u)), "https://") {
			errorf("unsubscribe.url", "must start with https:// (RFC 8058 one-click)")
		}
		if strings.ContainsAny(u, "\r\n\x00 ") {
			errorf("unsubscribe.url", "spaces and line breaks are not allowed")
		}
	} else if c.Unsubscribe.Mailto != "" {
		errorf("unsubscribe.url", "missing: one-click unsubscribe (RFC 8058) needs an https URL besides the mailto")
	}
	if strings.ContainsAny(c.Unsubscribe.Mailto, "\r\n\x00 <>") {
		errorf("unsubscribe.mailto", "spaces, angle brackets and line breaks are not allowed")
	}

	for i, s := range c.Suppress {
		exists("suppress."+strconv.Itoa(i), s)
	}
	c.validateBounces(errorf, add, exists)
}

type addFunc = func(field string, warning bool, format string, args ...any)
type errorfFunc = func(field, format string, args ...any)
type existsFunc = func(field, name string) bool

func (c *Campaign) validateSMTP(errorf errorfFunc, add addFunc, exists existsFunc) {
	// Security, auth, protocol, port and AUTH without TLS are the wire's
	// rules: the orchestrator checks this section with sender.New.
	s := c.SMTP
	if strings.ContainsAny(s.HELO, " \r\n\x00") {
		errorf("smtp.helo", "spaces and line breaks are not allowed")
	}
	c.validateCredentials("smtp", s.Username, s.PasswordEnv, s.PasswordFile, s.Auth == "none", errorf, add, exists)
	exists("smtp.ca_file", s.CAFile)
}

// validateCredentials applies the rules shared by smtp and bounces: one
// password source, named as a variable, not written in the file.
func (c *Campaign) validateCredentials(sec, user, env, file string, noAuth bool,
	errorf errorfFunc, add addFunc, exists existsFunc) {
	if env != "" && file != "" {
		errorf(sec+".password_file", "set only one of password_env and password_file")
	}
	if user != "" && !noAuth {
		if env == "" && file == "" {
			errorf(sec+".username", "needs password_env or password_file")
		}
	}
	switch {
	case env != "" && !validEnvName(env):
		// Never echo it: a value that is no variable name is most likely
		// the password itself, pasted in the wrong place.
		errorf(sec+".password_env", "must name an environment variable (letters, digits, _), not hold the password")
	case env != "":
		if _, ok := os.LookupEnv(env); !ok {
			add(sec+".password_env", true, "environment variable %s is not set", env)
		}
	}
	exists(sec+".password_file", file)
}

func (c *Campaign) validateSend(errorf errorfFunc) {
	d := c.Send
	if _, err := parseRate(d.Rate); err != nil {
		errorf("send.rate", "%v", err)
	}
	for _, v := range []struct {
		field string
		n     int
	}{{"send.burst", d.Burst}, {"send.concurrency", d.Concurrency}, {"send.per_connection", d.PerConnection},
		{"send.retries", d.Retries}, {"send.max_rcpt", d.MaxRcpt}, {"send.abort_after", d.AbortAfter}} {
		if v.n < 0 {
			errorf(v.field, "must not be negative")
		}
	}
	if d.Backoff < 0 {
		errorf("send.backoff", "must not be negative")
	}
	if d.Timeout < 0 {
		errorf("send.timeout", "must not be negative")
	}
}

func (c *Campaign) validateDKIM(errorf errorfFunc, add addFunc, exists existsFunc) {
	k := c.DKIM
	if k.Domain == "" && k.Selector == "" && k.KeyFile == "" && len(k.Headers) == 0 {
		return
	}
	if k.Domain == "" {
		errorf("dkim.domain", "missing: required to sign")
	}
	if k.Selector == "" {
		errorf("dkim.selector", "missing: required to sign")
	}
	if k.KeyFile == "" {
		errorf("dkim.key_file", "missing: required to sign")
	} else if exists("dkim.key_file", k.KeyFile) {
		if _, warn, err := c.dkimSigner(); err != nil {
			errorf("dkim.key_file", "%v", err)
		} else if warn != "" {
			add("dkim.key_file", true, "%s", warn)
		}
	}
	hasFrom := false
	for _, h := range k.Headers {
		if !validHeaderName(h) {
			errorf("dkim.headers", "%q is not a header name", h)
		}
		hasFrom = hasFrom || strings.EqualFold(h, "From")
	}
	if !hasFrom && len(k.Headers) > 0 {
		errorf("dkim.headers", "must include From (RFC 6376 section 5.4)")
	}
}

func (c *Campaign) validateBounces(errorf errorfFunc, add addFunc, exists existsFunc) {
	b := c.Bounces
	if b.Host == "" {
		if b != (Bounces{}) {
			errorf("bounces.host", "missing: required to read bounces")
		}
		return
	}
	if !slices.Contains([]string{"imap", "pop3"}, b.Protocol) {
		errorf("bounces.protocol", "%q is not imap or pop3", b.Protocol)
	}
	if !slices.Contains([]string{"tls", "starttls", "none"}, b.Security) {
		errorf("bounces.security", "%q is not tls, starttls or none", b.Security)
	} else if b.Security == "none" && !isLoopback(b.Host) {
		errorf("bounces.security", "none is allowed only for loopback hosts")
	}
	after := []string{"move", "delete", "keep"}
	if b.Protocol == "pop3" {
		after = []string{"delete", "keep"}
	}
	if !slices.Contains(after, b.After) {
		errorf("bounces.after", "%q is not %s", b.After, strings.Join(after, ", "))
	}
	if b.Port < 1 || b.Port > 65535 {
		errorf("bounces.port", "%d is not a TCP port", b.Port)
	}
	c.validateCredentials("bounces", b.Username, b.PasswordEnv, b.PasswordFile, false, errorf, add, exists)
	exists("bounces.ca_file", b.CAFile)
	if b.WriteTo == "" {
		errorf("bounces.write_to", "missing: the suppression file hard bounces are appended to")
	} else {
		if !filepath.IsLocal(b.WriteTo) || !staysInside(c.dir, b.WriteTo) {
			errorf("bounces.write_to", "%s is outside the campaign folder", b.WriteTo)
		}
		if !slices.Contains(c.Suppress, b.WriteTo) {
			add("bounces.write_to", true, "%s is not listed under suppress, so bounced addresses would still be mailed", b.WriteTo)
		}
	}
}

// fileErr words a Stat error of a campaign file without the absolute path.
func fileErr(name string, err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return name + ": no such file"
	case strings.Contains(err.Error(), "escapes"):
		return name + ": path escapes from the campaign folder"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return name + ": " + pe.Err.Error()
	}
	return err.Error()
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// validHeaderName follows RFC 5322 section 2.2: printable US-ASCII except colon.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == ':' {
			return false
		}
	}
	return true
}

// reservedHeaders are written by render from the campaign; a second copy
// would break RFC 5322's once-only rule (section 3.6) or the MIME tree.
var reservedHeaders = map[string]bool{
	"from": true, "to": true, "cc": true, "bcc": true, "sender": true, "reply-to": true,
	"subject": true, "date": true, "message-id": true, "mime-version": true,
	"content-type": true, "content-transfer-encoding": true, "dkim-signature": true,
	"list-unsubscribe": true, "list-unsubscribe-post": true,
}

// validEnvName reports whether s can be an environment variable name.
func validEnvName(s string) bool {
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}

// staysInside reports whether the folder that will hold name (relative to
// dir) is inside dir once symlinks are resolved: write_to is written with
// a rename next to it, which os.Root cannot do, so a symlinked folder is
// checked here instead. A folder that does not exist yet is fine.
func staysInside(dir, name string) bool {
	base, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false
	}
	parent, err := filepath.EvalSymlinks(filepath.Dir(filepath.Join(dir, name)))
	if err != nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	rel, err := filepath.Rel(base, parent)
	return err == nil && (rel == "." || filepath.IsLocal(rel))
}

// Problem places a message about a campaign key (a path such as
// "smtp.port", or "" for the file as a whole) on the campaign file's line
// of that key or its nearest parent, for callers that check what Load
// cannot: a relay setting, a template that fails to parse.
func (c *Campaign) Problem(field, message string) Problem {
	return Problem{File: c.base(), Line: c.line(field), Field: field, Message: message}
}

// base is the campaign file's name, as problems print it.
func (c *Campaign) base() string {
	if c.path == "" {
		return DefaultFile
	}
	return filepath.Base(c.path)
}
