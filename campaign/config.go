package campaign

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

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

// RecipientsFile locates the recipient CSV and says how to read it. In
// YAML it is either a file name (`recipients: list.csv`) or a mapping with
// the keys below. See Recipients for how the file is read.
type RecipientsFile struct {
	// File is the CSV file, relative to the campaign folder.
	File string `yaml:"file"`
	// Email is the column holding the address, matched exactly or else in
	// any letter case. Empty: the column named email, e-mail, email
	// address or mail, in any letter case and with spaces, hyphens and
	// underscores alike (Recipients.EmailColumn tells which).
	Email string `yaml:"email"`
	// Name is an optional text/template for the display name.
	Name string `yaml:"name"`
	// Delimiter is the character between columns: one character, or "tab"
	// (also written \t). Empty: whichever of comma, semicolon and tab
	// splits the header line into the most columns, a comma on a tie.
	Delimiter string `yaml:"delimiter"`
	// Encoding is the file's text encoding: utf-8 (empty, the default),
	// latin1 (iso-8859-1), windows-1252 (cp1252), utf-16 (with a byte
	// order mark), utf-16le or utf-16be. A byte order mark at the start
	// of the file decides whatever this says.
	Encoding string `yaml:"encoding"`
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
	// InlineCSS copies the rules of the layout's and body's <style> blocks
	// into style attributes, which mail clients keep; nil (not given)
	// means true, false leaves the HTML as the templates make it.
	InlineCSS *bool `yaml:"inline_css"`
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
	// Auth is auto, plain, login, cram-md5, xoauth2 or none; empty is the
	// sender's default: auto with a username, none without.
	Auth string `yaml:"auth"`
	HELO string `yaml:"helo"`
	// Protocol is smtp (default) or lmtp.
	Protocol string `yaml:"protocol"`
	// ConnectTimeout bounds connecting and the greeting; 0 is the sender's
	// default (30s). A relay that does not answer in time is unreachable.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
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
	// GiveUpAfter is how long a run waits for a relay that went away in
	// the middle of it before it stops (the journal intact, a rerun goes
	// on); 0 is 15 minutes.
	GiveUpAfter time.Duration `yaml:"give_up_after"`
	// Backoff is the first retry delay; 0 is the sender's default (2s).
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
	// Port 0 is the mailbox's default by protocol and security (993/143
	// imap, 995/110 pop3).
	Port int `yaml:"port"`
	// Security is tls (default), starttls or none (loopback only).
	Security    string `yaml:"security"`
	CAFile      string `yaml:"ca_file"`
	Username    string `yaml:"username"`
	PasswordEnv string `yaml:"password_env"`
	// PasswordFile is a file holding the password, inside the campaign folder.
	PasswordFile string `yaml:"password_file"`
	// Mailbox is the IMAP mailbox; empty is the mailbox's default, INBOX.
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
// "warning: " before the message. Control characters (a CR LF from a CSV
// value or a file name, an escape sequence) are shown escaped, so a
// problem is one line on the terminal and cannot forge another.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(Printable(p.File))
	if p.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(p.Line))
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(Printable(p.Field))
		b.WriteString(": ")
	}
	if p.Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(Printable(p.Message))
	return b.String()
}

// Printable shows the control characters of s escaped as Go does (\r, \n,
// \x1b, \u202e), leaving all other text as it is: the one rule for text
// from a campaign that reaches a terminal or a log.
func Printable(s string) string {
	clean := true
	for _, r := range s {
		if unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
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
	// Problems name the file as the user would type it from where they
	// stand: "examples/newsletter/campaign.yaml:7: ...".
	file := filepath.Clean(path)
	// The YAML parser says "invalid UTF-8" without a line.
	if line, ok := badUTF8Line(data); ok {
		return nil, Problems{{File: file, Line: line, Message: "invalid UTF-8 (the file must be saved as UTF-8)"}}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		// A tab is fine inside a block of text; only a file that does not
		// parse is blamed on one.
		if line, ok := tabIndent(data); ok {
			return nil, Problems{{File: file, Line: line, Message: "tabs are not allowed for indentation in YAML: indent with spaces"}}
		}
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
	if t := typeErrRE.FindStringSubmatch(m[2]); t != nil {
		p.Field, p.Message = keyAt(keys, line), wrongType(t[1], t[2], t[3])
	}
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

// typeErrRE matches yaml.v3's words for a value of the wrong type, to say
// them in the user's terms (presentation only: an unmatched message is
// printed as it is).
var typeErrRE = regexp.MustCompile("^cannot unmarshal !!(\\w+) `(.*)` into (\\S+)$")

// wrongType says what a value of the wrong YAML type should be.
func wrongType(tag, value, goType string) string {
	switch {
	case goType == "time.Duration":
		return fmt.Sprintf("%q is not a duration: write it with its unit, like 30s, 2m or 1h", value)
	case strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "uint") || strings.HasPrefix(goType, "float"):
		return fmt.Sprintf("%q is not a number", value)
	case goType == "bool":
		return fmt.Sprintf("%q is not true or false", value)
	case goType == "string":
		return fmt.Sprintf("a %s where text is wanted: put the value in quotes", tag)
	case strings.HasPrefix(goType, "[]"):
		return fmt.Sprintf("%q is not a list: write one item per line, each after \"- \"", value)
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "campaign."):
		return fmt.Sprintf("%q is not a section: write its keys on the lines below, indented", value)
	}
	return fmt.Sprintf("%q is not a %s", value, goType)
}

// keyAt is the key path on line, the deepest when several share it.
func keyAt(keys map[string]int, line int) string {
	best := ""
	for path, l := range keys {
		if l == line && len(path) > len(best) {
			best = path
		}
	}
	return best
}

// tabIndent finds the first line indented with a tab, which YAML forbids
// (YAML 1.2 section 6.1) and yaml.v3 reports as "found character that
// cannot start any token".
func tabIndent(data []byte) (int, bool) {
	for i, l := range bytes.Split(data, []byte("\n")) {
		indent := l[:len(l)-len(bytes.TrimLeft(l, " \t"))]
		if bytes.IndexByte(indent, '\t') >= 0 && len(bytes.TrimSpace(l)) > 0 {
			return i + 1, true
		}
	}
	return 0, false
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
		case "file", "email", "name", "encoding":
		case "delimiter":
			// `delimiter: |` is an empty block scalar to YAML.
			if v := n.Content[i+1]; v.Value == "" {
				errs = append(errs, fmt.Sprintf("line %d: recipients.delimiter: empty: write the character in quotes, e.g. delimiter: \"|\", or leave the key out to detect it", v.Line))
			}
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
	b := &c.Bounces
	if b.Host != "" {
		// Security, port and folder defaults are the mailbox's.
		if b.Protocol == "" {
			b.Protocol = "imap"
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

// base is the campaign file's name, as problems print it: the path as the
// user gave it.
func (c *Campaign) base() string {
	if c.path == "" {
		return DefaultFile
	}
	return filepath.Clean(c.path)
}

// badUTF8Line is the 1-based line of the first byte of data that is not
// UTF-8.
func badUTF8Line(data []byte) (int, bool) {
	if utf8.Valid(data) {
		return 0, false
	}
	line := 1
	for len(data) > 0 {
		r, n := utf8.DecodeRune(data)
		if r == utf8.RuneError && n <= 1 {
			return line, true
		}
		if r == '\n' {
			line++
		}
		data = data[n:]
	}
	return line, true
}
