package render

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	htemplate "html/template"
	"io"
	"maps"
	"net/mail"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	ttemplate "text/template"
	"time"
	"unicode/utf8"

	gomail "github.com/wneessen/go-mail"
	"github.com/yuin/goldmark"
)

// Renderer builds messages from one campaign's templates. It is safe for
// concurrent use by several goroutines: templates, the goldmark instance and
// static files are read-only after New, and the image cache is locked.
type Renderer struct {
	cfg  Config
	root *os.Root
	md   goldmark.Markdown
	skel *skeletons // rendered Markdown skeletons, see skeleton.go

	subject, name *ttemplate.Template
	markdown      *ttemplate.Template
	html          *htemplate.Template
	text          *ttemplate.Template
	layout        *htemplate.Template
	layoutSplit   *layoutSplit // the layout run once, when it can be (layout.go)
	inline        bool         // inline the CSS of <style> blocks (inline.go)
	warnings      []Warning    // see Warnings (lint.go)
	bodyFile      string
	headers       []headerTemplate
	attachments   []attachTemplate
	unsubURL      *ttemplate.Template
	unsubMailto   *ttemplate.Template

	from     []*mail.Address
	sender   *mail.Address
	replyTo  []*mail.Address
	groupTo  []*mail.Address
	envFrom  string
	domain   string
	dkimKeys []string // configured h= list, nil for the default

	imgMu  sync.RWMutex
	images map[string]*fileData

	slot       []byte         // the bytes go-mail writes in a file part's place (parts.go)
	slots      []*gomail.File // that slot, sharedSlots times, for go-mail
	staticSize int64          // see StaticSize
}

type headerTemplate struct {
	name  string
	field string // "header <name>"
	t     *ttemplate.Template
}

type attachTemplate struct {
	t      *ttemplate.Template // nil when the path has no template action
	static *fileData
}

// New parses every template and reads the static attachments once. Paths in
// cfg are relative to cfg.Dir and confined to it. Errors name the file (and
// the line, for template syntax errors and template files that are not
// valid UTF-8) or the configuration field; those of the subject, name,
// body, text and layout templates are *FieldError values with that Field.
func New(cfg Config) (*Renderer, error) {
	if cfg.Vars == nil {
		cfg.Vars = map[string]any{}
	}
	r := &Renderer{cfg: cfg, md: newMarkdown(), skel: newSkeletons(), images: map[string]*fileData{},
		slot: partHeader(slotHeader()), slots: newSlots(sharedSlots)}
	root, err := os.OpenRoot(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("campaign folder: %w", err)
	}
	r.root = root
	if err := r.init(); err != nil {
		root.Close()
		return nil, err
	}
	return r, nil
}

// Close releases the campaign folder handle. Render must not be called after.
func (r *Renderer) Close() error { return r.root.Close() }

// init prepares r in the steps doc.go numbers, in that order, so the first
// error New reports is the same whatever else is wrong.
func (r *Renderer) init() error {
	if err := r.parseAddresses(); err != nil {
		return err
	}
	if err := r.parseTemplates(); err != nil {
		return err
	}
	if err := r.parseHeaders(); err != nil {
		return err
	}
	if err := r.prepareAttachments(); err != nil {
		return err
	}
	if err := r.parseUnsubscribe(); err != nil {
		return err
	}
	if d := r.cfg.DKIM; d != nil {
		if err := checkDKIM(d); err != nil {
			return fmt.Errorf("dkim: %w", err)
		}
		r.dkimKeys = d.Headers
	}
	r.staticSize = r.sizeStatic()
	return nil
}

// StaticSize returns the size in bytes of the parts that every message of
// r carries whatever the row, as they go into the message (MIME header
// and base64 body): the attachments whose path has no template action and
// the images of a layout that reads only .Body and .Vars. New encodes them
// once and r keeps them; each message holds a copy in its Data. A caller
// that keeps n messages in flight (rendered ahead of the consumer, queued
// for the relay) thus needs about (n+1) * StaticSize bytes beyond its
// other memory, and under a soft memory limit
// (runtime/debug.SetMemoryLimit) lower than that the garbage collector
// runs back to back. Images of the body and attachments whose path is a
// template are read per row (the images then cached) and not counted.
func (r *Renderer) StaticSize() int64 { return r.staticSize }

// sizeStatic adds up the parts StaticSize counts.
func (r *Renderer) sizeStatic() int64 {
	var n int64
	for _, a := range r.attachments {
		if a.static != nil {
			n += int64(len(a.static.part))
		}
	}
	if r.layoutSplit != nil {
		for _, f := range r.layoutSplit.embeds {
			n += int64(len(f.part))
		}
	}
	return n
}

// parseAddresses parses From, Sender, Reply-To and the group To, and picks
// the envelope sender: the Sender when set, which several From authors
// require (RFC 5322 section 3.6.2), else the one From.
func (r *Renderer) parseAddresses() error {
	cfg := &r.cfg
	var err error
	if r.from, err = parseList("from", cfg.From); err != nil {
		return err
	}
	for _, a := range r.from {
		if !isASCII(a.Address) {
			return fmt.Errorf("from %q: the address must be ASCII", cfg.From)
		}
	}
	if cfg.Sender != "" {
		if r.sender, err = parseMailbox("sender", cfg.Sender); err != nil {
			return err
		}
		if !isASCII(r.sender.Address) {
			return fmt.Errorf("sender %q: address must be ASCII", cfg.Sender)
		}
		r.envFrom = r.sender.Address
	} else if len(r.from) > 1 {
		return fmt.Errorf("sender: required when from lists %d authors (RFC 5322 3.6.2)", len(r.from))
	} else {
		r.envFrom = r.from[0].Address
	}
	r.domain = domainOf(r.from[0].Address)
	if cfg.ReplyTo != "" {
		if r.replyTo, err = parseList("reply_to", cfg.ReplyTo); err != nil {
			return err
		}
		for _, a := range r.replyTo {
			if !isASCII(a.Address) {
				return fmt.Errorf("reply_to %q: the address must be ASCII", cfg.ReplyTo)
			}
		}
	}
	if cfg.Group.To != "" {
		if r.groupTo, err = parseList("group to", cfg.Group.To); err != nil {
			return err
		}
	}
	return nil
}

// parseTemplates parses the subject and name templates, the body (Markdown
// or HTML), the text template and the layout. Its errors are *FieldError
// values for subject, name, body, text or layout.
func (r *Renderer) parseTemplates() error {
	cfg := &r.cfg
	var err error
	if r.subject, err = parseText("subject", cfg.Subject); err != nil {
		return fieldErr("subject", err)
	}
	if cfg.Name != "" {
		if r.name, err = parseText("name", cfg.Name); err != nil {
			return fieldErr("name", err)
		}
	}
	if err := r.parseBody(); err != nil {
		return fieldErr("body", err)
	}
	if cfg.Text != "" {
		src, err := r.readTemplate(cfg.Text)
		if err != nil {
			return fieldErr("text", err)
		}
		if r.text, err = parseText(cfg.Text, src); err != nil {
			return fieldErr("text", err)
		}
	}
	if cfg.Layout != "" {
		src, err := r.readTemplate(cfg.Layout)
		if err != nil {
			return fieldErr("layout", err)
		}
		if r.layout, err = parseHTML(cfg.Layout, src); err != nil {
			return fieldErr("layout", err)
		}
		r.inline = r.inline || r.wantsInline(src)
		r.lintLayout(src)
		r.layoutSplit = r.splitLayout()
	}
	return nil
}

// parseBody reads and parses the one body template, Markdown or HTML.
func (r *Renderer) parseBody() error {
	cfg := &r.cfg
	switch {
	case cfg.Markdown != "" && cfg.HTML != "":
		return errors.New("give markdown or html, not both")
	case cfg.Markdown != "":
		r.bodyFile = cfg.Markdown
		src, err := r.readTemplate(cfg.Markdown)
		if err != nil {
			return err
		}
		if r.markdown, err = parseMarkdownTemplate(cfg.Markdown, src); err != nil {
			return err
		}
		r.inline = r.wantsInline(src)
		r.lintBody(src)
		// printf is the one builtin that can cut or re-encode a printed
		// value's marker (%.3s, %x); such templates have every skeleton
		// checked against a plain run (Renderer.markdownBody).
		r.skel.verify = strings.Contains(src, "printf")
	case cfg.HTML != "":
		r.bodyFile = cfg.HTML
		src, err := r.readTemplate(cfg.HTML)
		if err != nil {
			return err
		}
		if r.html, err = parseHTML(cfg.HTML, src); err != nil {
			return err
		}
		r.inline = r.wantsInline(src)
		r.lintBody(src)
	default:
		return errors.New("markdown or html is required")
	}
	return nil
}

// parseHeaders checks the names of the extra headers (CheckHeaderName, and
// each name once whatever its case) and parses their value templates, in
// name order so errors and output are deterministic.
func (r *Renderer) parseHeaders() error {
	names := make([]string, 0, len(r.cfg.Headers))
	for name := range r.cfg.Headers {
		names = append(names, name)
	}
	slices.Sort(names)
	seen := map[string]bool{}
	for _, name := range names {
		field := "header " + name
		if err := CheckHeaderName(name); err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
		if seen[strings.ToLower(name)] {
			return fmt.Errorf("%s: given twice", field)
		}
		seen[strings.ToLower(name)] = true
		t, err := parseText(field, r.cfg.Headers[name])
		if err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
		r.headers = append(r.headers, headerTemplate{name: name, field: field, t: t})
	}
	return nil
}

// prepareAttachments reads and encodes an attachment without a template
// action once, for every message, and parses the path template of the
// others.
func (r *Renderer) prepareAttachments() error {
	for i, p := range r.cfg.Attachments {
		if !strings.Contains(p, "{{") {
			f, err := r.attachment(p)
			if err != nil {
				return fmt.Errorf("attachment %s: %w", p, err)
			}
			r.attachments = append(r.attachments, attachTemplate{static: f})
			continue
		}
		t, err := parseText("attachment "+strconv.Itoa(i+1), p)
		if err != nil {
			return fmt.Errorf("attachment %s: %w", p, err)
		}
		r.attachments = append(r.attachments, attachTemplate{t: t})
	}
	return nil
}

// parseUnsubscribe parses the List-Unsubscribe templates; a mailto alone is
// refused, as RFC 8058 one-click needs the https URL.
func (r *Renderer) parseUnsubscribe() error {
	u := r.cfg.Unsubscribe
	var err error
	if u.URL == "" {
		if u.Mailto != "" {
			return errors.New("unsubscribe: mailto needs url too (RFC 8058 one-click needs https)")
		}
		return nil
	}
	if r.unsubURL, err = parseText("unsubscribe url", u.URL); err != nil {
		return fmt.Errorf("unsubscribe: %w", err)
	}
	if u.Mailto != "" {
		if r.unsubMailto, err = parseText("unsubscribe mailto", u.Mailto); err != nil {
			return fmt.Errorf("unsubscribe: %w", err)
		}
	}
	return nil
}

// readTemplate reads the template file p, which must be UTF-8: its parts
// are declared charset=UTF-8, and a Latin-1 byte would go out as it is.
func (r *Renderer) readTemplate(p string) (string, error) {
	b, err := r.readFile(p)
	if err != nil {
		return "", err
	}
	if err := checkUTF8(p, b); err != nil {
		return "", err
	}
	return string(b), nil
}

// checkUTF8 refuses b, the contents of file name, unless it is valid
// UTF-8. The error names the 1-based line and the value of the first bad
// byte: "body.md:3: invalid UTF-8 (byte 0xE9; the file must be saved as
// UTF-8)".
func checkUTF8(name string, b []byte) error {
	if utf8.Valid(b) {
		return nil
	}
	i := 0
	for i < len(b) {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		i += size
	}
	line := 1 + bytes.Count(b[:i], []byte{'\n'})
	return fmt.Errorf("%s:%d: invalid UTF-8 (byte 0x%02X; the file must be saved as UTF-8)", name, line, b[i])
}

// parseText parses a text/template; a parse error shows how to write a
// column name the parser could not read (columnHint) or why a function is
// left out (excludedHint). Every template has templateFuncs (funcs.go).
func parseText(name, src string) (*ttemplate.Template, error) {
	t, err := ttemplate.New(name).Option("missingkey=error").Funcs(templateFuncs()).Parse(src)
	return t, excludedHint(columnHint(err, src))
}

// parseMarkdownTemplate parses the Markdown body's text/template as parseText,
// with the functions adapted to its marker run (markdownFunc).
func parseMarkdownTemplate(name, src string) (*ttemplate.Template, error) {
	t, err := ttemplate.New(name).Option("missingkey=error").Funcs(markdownFuncs()).Parse(src)
	return t, excludedHint(columnHint(err, src))
}

// parseHTML parses an html/template as parseText a text/template.
func parseHTML(name, src string) (*htemplate.Template, error) {
	t, err := htemplate.New(name).Option("missingkey=error").Funcs(templateFuncs()).Parse(src)
	return t, excludedHint(columnHint(err, src))
}

// content is what one message says, before it becomes MIME.
type content struct {
	subject     string
	headers     [][2]string
	html, text  string
	whole       bool // html is the whole page, CSS inlined (Renderer.wholePage)
	embeds      []*fileData
	attachments []*fileData
}

// Render builds the individual message for one recipient. When the row
// fails, every part is still rendered on its own and the error is
// errors.Join of a *FieldError per failure, in the order address, name,
// unsubscribe, subject, extra headers (by name), body, layout, text,
// attachments (in Config order): errors.As finds the first, and a caller
// that walks Unwrap() []error sees them all. A template that reads a
// column the row lacks fails with a *MissingKeyError as the cause.
func (r *Renderer) Render(rc Recipient) (*Message, error) {
	errs := fieldErrors{fields: rc.Fields}
	addr, err := parseBare(rc.Email)
	if err != nil {
		errs.add("address", err)
	}
	data := r.data(rc.Fields, nil)
	to := &mail.Address{Address: addr}
	if r.name != nil {
		if to.Name, err = r.displayName(data); err != nil {
			errs.add("name", err)
		}
	}
	unsub := r.unsubscribe(rc.Fields, &errs)
	c := r.content(rc.Fields, data, &errs)
	if err := errs.err(); err != nil {
		return nil, err
	}
	if unsub != "" {
		c.headers = append(c.headers,
			[2]string{gomail.HeaderListUnsubscribe.String(), unsub},
			[2]string{gomail.HeaderListUnsubscribePost.String(), "List-Unsubscribe=One-Click"})
	}
	return r.compose(c, []*mail.Address{to}, "", []string{addr})
}

// displayName renders the recipient's display name: one line, no control
// characters, at most maxName bytes.
func (r *Renderer) displayName(data map[string]any) (string, error) {
	name, err := execText(r.name, data)
	if err != nil {
		return "", err
	}
	if err := checkHeaderValue("name", name); err != nil {
		return "", err
	}
	name = oneLine(name)
	if len(name) > maxName {
		return "", fmt.Errorf("template \"name\": %d bytes is longer than %d", len(name), maxName)
	}
	return name, nil
}

// unsubscribe renders the List-Unsubscribe value of the row fields, ""
// when the campaign has none or on failure, which it adds to errs.
func (r *Renderer) unsubscribe(fields map[string]string, errs *fieldErrors) string {
	if r.unsubURL == nil {
		return ""
	}
	// CSV values are URL-escaped: a value cannot add a query parameter, a
	// path segment or a mailto header (cc=...) to the one-click link. A
	// CR or LF in a value stays a row error, as in every header, rather
	// than being escaped away; the columns in name order, so the errors
	// are the same for every run.
	var bad []string
	for k, v := range fields {
		if strings.ContainsAny(v, "\r\n\x00") {
			bad = append(bad, k)
		}
	}
	slices.Sort(bad)
	for _, k := range bad {
		if err := checkHeaderValue("unsubscribe", fields[k]); err != nil {
			errs.add("unsubscribe", fmt.Errorf("column %s: %w", k, err))
		}
	}
	data := r.data(fields, urlEscape)
	u, uerr := execText(r.unsubURL, data)
	if uerr != nil {
		errs.add("unsubscribe", uerr)
	}
	var m string
	var merr error
	if r.unsubMailto != nil {
		if m, merr = execText(r.unsubMailto, data); merr != nil {
			errs.add("unsubscribe", merr)
		}
	}
	if len(bad) > 0 || uerr != nil || merr != nil {
		return ""
	}
	unsub, err := unsubscribeHeader(strings.TrimSpace(u), strings.TrimSpace(m))
	if err != nil {
		errs.add("unsubscribe", err)
	}
	return unsub
}

// RenderGroup builds the one group message for all of to (bare addresses).
// Templates see only .Vars. The visible To is Config.Group.To and the
// recipients travel as Bcc (only in the envelope), unless Group.Visible.
// Group messages carry no per-recipient List-Unsubscribe. Errors are
// joined *FieldError values as Render's: each bad address, then the
// parts that failed.
func (r *Renderer) RenderGroup(to []string) (*Message, error) {
	var errs fieldErrors
	env := make([]string, 0, len(to))
	for _, t := range to {
		a, err := parseBare(t)
		if err != nil {
			errs.add("address", err)
			continue
		}
		env = append(env, a)
	}
	if len(to) == 0 {
		errs.add("address", errors.New("group message without recipients"))
	}
	c := r.content(nil, r.data(nil, nil), &errs)
	if err := errs.err(); err != nil {
		return nil, err
	}
	var hdrTo []*mail.Address
	undisclosed := ""
	if r.cfg.Group.Visible {
		for _, a := range env {
			hdrTo = append(hdrTo, &mail.Address{Address: a})
		}
	} else if len(r.groupTo) > 0 {
		hdrTo = r.groupTo
	} else {
		// RFC 5322 A.1.3: an empty group keeps the Bcc recipients hidden.
		undisclosed = "undisclosed-recipients:;"
	}
	return r.compose(c, hdrTo, undisclosed, env)
}

// data is the template data: CSV columns by header plus Vars. For Markdown
// every CSV value is escaped so it stays literal text.
// urlEscape makes a value one opaque URL component, valid in a path
// segment and in a query alike (a space is %20, not +).
func urlEscape(v string) string {
	return strings.ReplaceAll(url.QueryEscape(v), "+", "%20")
}

func (r *Renderer) data(fields map[string]string, escape func(string) string) map[string]any {
	d := make(map[string]any, len(fields)+2)
	for k, v := range fields {
		if escape != nil {
			v = escape(v)
		}
		d[k] = v
	}
	d["Vars"] = r.cfg.Vars
	return d
}

// content renders subject, extra headers, bodies, images and attachments:
// everything both message kinds share. Each part is rendered whether or
// not another failed, and each failure is added to errs; the content is
// for composing only when errs stays empty.
func (r *Renderer) content(fields map[string]string, data map[string]any, errs *fieldErrors) *content {
	c := &content{}
	r.headerValues(c, data, errs)
	body, derived := r.body(c, fields, data, errs)
	r.wrapBody(c, body, data, errs)
	if r.inline && !c.whole && len(errs.list) == 0 {
		r.inlineMessage(c, errs)
	}
	switch {
	case r.text != nil:
		var err error
		if c.text, err = execText(r.text, data); err != nil {
			errs.add("text", err)
		}
	case r.markdown != nil:
		c.text = derived
	default:
		c.text = htmlToText(body)
	}
	r.files(c, data, errs)
	return c
}

// headerValues renders the subject and the extra headers of c.
func (r *Renderer) headerValues(c *content, data map[string]any, errs *fieldErrors) {
	subject, err := execText(r.subject, data)
	if err == nil {
		err = checkHeaderValue("subject", subject)
	}
	if err != nil {
		errs.add("subject", err)
	}
	c.subject = oneLine(subject)
	for _, h := range r.headers {
		v, err := execText(h.t, data)
		if err == nil {
			err = checkHeaderValue(h.field, v)
		}
		if err != nil {
			errs.add(h.field, err)
			continue
		}
		// The value as written: encoded unless plain (encodeText).
		c.headers = append(c.headers, [2]string{h.name, encodeText(oneLine(v), firstRoom(h.name))})
	}
}

// body renders the HTML body with its images embedded, and the text the
// Markdown body gives: Markdown runs its template on escaped values, then
// goldmark; the HTML body runs html/template, which escapes values
// itself. On failure the body is empty.
func (r *Renderer) body(c *content, fields map[string]string, data map[string]any, errs *fieldErrors) (body, derived string) {
	embedded := false // the body's images are cid: references already
	if r.markdown != nil {
		md, err := r.markdownBody(fields)
		if err != nil {
			errs.add("body", err)
			return "", ""
		}
		body, derived, c.embeds, embedded, c.whole = md.html, md.text, md.embeds, md.embedded, md.whole
	} else {
		var err error
		if body, err = execText(r.html, data); err != nil {
			errs.add("body", err)
			return "", ""
		}
	}
	if !embedded {
		var err error
		if body, c.embeds, err = r.embedImages(body, r.bodyFile, c.embeds); err != nil {
			errs.add("body", err)
			return "", ""
		}
	}
	return body, derived
}

// wrapBody sets the HTML of c: body in the layout, if there is one. The
// layout runs even when the body failed (body is then empty), so its own
// problems show too.
func (r *Renderer) wrapBody(c *content, body string, data map[string]any, errs *fieldErrors) {
	c.html = body
	if ls := r.layoutSplit; ls != nil {
		if !c.whole {
			c.html = ls.before + body + ls.after
		}
		for _, f := range ls.embeds {
			if !containsFile(c.embeds, f) {
				c.embeds = append(c.embeds, f)
			}
		}
		return
	}
	if r.layout == nil {
		return
	}
	ld := make(map[string]any, len(data)+1)
	for k, v := range data {
		ld[k] = v
	}
	ld["Body"] = htemplate.HTML(body)
	html, err := execText(r.layout, ld)
	if err != nil {
		errs.add("layout", err)
		return
	}
	if c.html, c.embeds, err = r.embedImages(html, r.cfg.Layout, c.embeds); err != nil {
		errs.add("layout", err)
	}
}

// files adds the attachments to c: the static ones as they are, the
// others rendered and read, each failure on its own.
func (r *Renderer) files(c *content, data map[string]any, errs *fieldErrors) {
	for _, a := range r.attachments {
		if a.static != nil {
			c.attachments = append(c.attachments, a.static)
			continue
		}
		p, err := execText(a.t, data)
		if err != nil {
			errs.add("attachment", err)
			continue
		}
		f, err := r.attachment(p)
		if err != nil {
			errs.add("attachment", err)
			continue
		}
		c.attachments = append(c.attachments, f)
	}
}

// executor is a parsed text/template or html/template.
type executor interface {
	Execute(w io.Writer, data any) error
}

// execText runs t on data. When the run fails because data lacks a
// column, t runs again with that column empty, and so on until it runs or
// fails otherwise, at most maxMissing times: one failed row then names
// every missing column of the template, not only the first. The error is
// then a keyErrors of the runs' errors, which fieldErrors.add takes apart.
func execText(t executor, data map[string]any) (string, error) {
	var b strings.Builder
	err := t.Execute(&b, data)
	if err == nil {
		return b.String(), nil
	}
	key, _, _, ok := missingKey(err)
	if !ok {
		return "", err
	}
	errs := keyErrors{err}
	more := maps.Clone(data)
	for len(errs) < maxMissing {
		more[key] = ""
		if err = t.Execute(io.Discard, more); err == nil {
			break
		}
		// Another kind of error may come from the empty value put in
		// (index of "", say): only another missing column is the
		// template's own.
		if key, _, _, ok = missingKey(err); !ok || more[key] != nil {
			break
		}
		errs = append(errs, err)
	}
	if len(errs) == 1 {
		return "", errs[0]
	}
	return "", errs
}

// compose turns content into the bytes of one message with go-mail, then
// signs them. hdrTo is the visible To (or the literal group syntax in
// undisclosed); env are the envelope recipients.
func (r *Renderer) compose(c *content, hdrTo []*mail.Address, undisclosed string, env []string) (*Message, error) {
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	id, err := r.setHeaders(m, c, hdrTo, undisclosed)
	if err != nil {
		return nil, err
	}
	m.SetBodyWriter(gomail.TypeTextPlain, writeString(c.text))
	m.AddAlternativeWriter(gomail.TypeTextHTML, writeString(c.html))
	var buf [4][]byte
	parts := r.setFiles(m, c, buf[:0])
	data, err := r.write(m, 4096+2*len(c.html)+2*len(c.text), parts)
	if err != nil {
		return nil, err
	}
	return &Message{From: r.envFrom, To: env, MessageID: id, Subject: c.subject, Data: data}, nil
}

// setHeaders sets every header field of m and returns the Message-ID.
func (r *Renderer) setHeaders(m *gomail.Msg, c *content, hdrTo []*mail.Address, undisclosed string) (string, error) {
	// go-mail writes generic headers sorted by name but preformatted ones in
	// map order, so every header goes through SetGenHeader with a value
	// encoded here already (encodeText, formatAddress): go-mail would
	// RFC 2047-encode only non-ASCII, and leaves these alone.
	// Address headers are formatted here rather than by go-mail: it writes
	// only the first From mailbox, and see formatAddress.
	m.SetGenHeader(gomail.Header("From"), joinAddrs("From", r.from))
	if r.sender != nil {
		m.SetGenHeader(gomail.Header("Sender"), formatAddress(r.sender, firstRoom("Sender")))
	}
	if len(r.replyTo) > 0 {
		m.SetGenHeader(gomail.Header("Reply-To"), joinAddrs("Reply-To", r.replyTo))
	}
	switch to := joinAddrs("To", hdrTo); {
	case undisclosed != "":
		m.SetGenHeader(gomail.Header("To"), undisclosed)
	case isASCII(to):
		m.SetGenHeader(gomail.Header("To"), to)
	default:
		// An internationalised address (RFC 6532) must stay raw UTF-8, which
		// SetGenHeader would RFC 2047-encode. It is the only preformatted
		// header, so the order stays deterministic.
		m.SetGenHeaderPreformatted(gomail.Header("To"), foldHeader("To", to))
	}
	m.Subject(encodeText(c.subject, firstRoom("Subject")))
	now := time.Now
	if r.cfg.Now != nil {
		now = r.cfg.Now
	}
	m.SetDateWithValue(now())
	id, err := r.messageID()
	if err != nil {
		return "", err
	}
	m.SetMessageIDWithValue(id)
	for _, h := range c.headers {
		m.SetGenHeader(gomail.Header(h[0]), h[1])
	}
	return id, nil
}

// setFiles gives go-mail a slot for each image and attachment of c and
// appends their parts to parts, in the order go-mail writes them: the
// images (multipart/related), then the attachments (multipart/mixed).
func (r *Renderer) setFiles(m *gomail.Msg, c *content, parts [][]byte) [][]byte {
	n := len(c.embeds) + len(c.attachments)
	if n == 0 {
		return parts
	}
	slots := r.slots
	if n > len(slots) {
		slots = make([]*gomail.File, n)
		for i := range slots {
			slots[i] = r.slots[0]
		}
	}
	for _, f := range c.embeds {
		parts = append(parts, f.part)
	}
	for _, f := range c.attachments {
		parts = append(parts, f.part)
	}
	if len(c.embeds) > 0 {
		m.SetEmbeds(slots[:len(c.embeds)])
	}
	if len(c.attachments) > 0 {
		m.SetAttachments(slots[len(c.embeds):n])
	}
	return parts
}

// write writes m, puts parts in their slots and signs the result. est is
// what m without the parts may take. Without DKIM the parts go into the
// buffer go-mail wrote to, sized for them; with DKIM the signer reads the
// message piece by piece and it is assembled once, behind its signature.
// Either way a message costs one buffer of its size, not a copy per step.
func (r *Renderer) write(m *gomail.Msg, est int, parts [][]byte) ([]byte, error) {
	est += len(parts) * len(r.slot)
	if r.cfg.DKIM == nil {
		est += partsSize(parts)
	}
	buf := msgBuf(make([]byte, 0, est))
	if _, err := m.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	msg := refoldHeaders(buf)
	var atBuf [4]int
	at, err := findSlots(msg, r.slot, len(parts), atBuf[:0])
	if err != nil {
		return nil, err
	}
	sig := ""
	if r.cfg.DKIM != nil {
		if sig, err = r.sign(msg, len(r.slot), at, parts); err != nil {
			return nil, err
		}
	} else if len(parts) == 0 {
		return msg, nil
	}
	return splice(sig, msg, len(r.slot), at, parts), nil
}

// msgBuf is what go-mail writes a message to: a slice made once of the
// size the message is expected to take (bytes.Buffer.Grow may allocate
// twice that).
type msgBuf []byte

func (b *msgBuf) Write(p []byte) (int, error) {
	*b = append(*b, p...)
	return len(p), nil
}

func (b *msgBuf) WriteString(s string) (int, error) {
	*b = append(*b, s...)
	return len(s), nil
}

// joinAddrs formats the address list of field (From, Reply-To, To) with
// formatAddress, the first address sized to the field's first line.
func joinAddrs(field string, l []*mail.Address) string {
	s := make([]string, len(l))
	room := firstRoom(field)
	for i, a := range l {
		s[i] = formatAddress(a, room)
		room = maxEncodedWord
	}
	return strings.Join(s, ", ")
}

// formatAddress is mail.Address.String, except for the display name: one
// that is printable ASCII without an encoded-word mark is a quoted-string
// as there; any other is encoded whole by encodePhrase. The standard
// library would quote an ASCII look-alike such as
// "=?UTF-8?Q?Eve=0D=0ABcc:_spy@evil.example?=", which Python's email still
// decodes (RFC 2047 section 5(3) says not to), and leave a backslash raw
// in a Q word (found by FuzzHeaderValue). room is encodePhrase's.
func formatAddress(a *mail.Address, room int) string {
	if a.Name == "" || printable(a.Name) && !hasMark(a.Name) {
		return a.String()
	}
	return encodePhrase(a.Name, room) + " " + (&mail.Address{Address: a.Address}).String()
}

func writeString(s string) func(io.Writer) (int64, error) {
	return func(w io.Writer) (int64, error) {
		n, err := io.WriteString(w, s)
		return int64(n), err
	}
}

// maxName bounds a display name: it keeps the To line foldable even when it
// cannot be folded (internationalised addresses) and catches broken data.
const maxName = 256

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// messageID returns Config.MessageID's value or a random id in the From
// domain (RFC 5322 3.6.4: unique, with a domain the sender controls).
func (r *Renderer) messageID() (string, error) {
	if r.cfg.MessageID != nil {
		id := r.cfg.MessageID()
		if id == "" || strings.ContainsAny(id, "<> \t\r\n\x00") || !strings.Contains(id, "@") {
			return "", fmt.Errorf("message-id %q: want id-left@id-right without brackets or blanks", id)
		}
		return id, nil
	}
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("message-id: %w", err)
	}
	return strings.ToLower(idEncoding.EncodeToString(b[:])) + "@" + r.domain, nil
}
