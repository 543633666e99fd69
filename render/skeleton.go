package render

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	ttemplate "text/template"
	"text/template/parse"
	"unicode"

	"github.com/yuin/goldmark/util"
)

// A Markdown body is mostly the same text for every recipient: only the CSV
// values differ. Parsing and rendering it with goldmark per recipient was
// half of the CPU of a send, so the body is rendered once per skeleton, the
// Markdown with every printed CSV value replaced by a numbered placeholder,
// and each recipient's values are put into the cached HTML and text with
// the escaping of the place they land in (HTML text, an attribute, a URL,
// plain text). The values never pass through goldmark, so they cannot make
// Markdown structure, and no Markdown escape shows up in code spans, link
// targets or the author's own HTML.
//
// The template runs on mdValue values: comparisons, if, len and slice see
// the real value, and printing one yields a marker carrying the value in
// hex. skeletonize then swaps the markers for numbered placeholders, so two
// recipients whose templates took the same branches share one skeleton.

// maxSkeletons bounds the cache: branches on values rarely make more than
// a handful of skeletons, and a template that makes one per recipient
// (printing len of a value, say) must not hold them all in memory. Beyond
// it, a new skeleton is rendered without being kept.
const maxSkeletons = 64

// mdValue is a CSV value as the Markdown template sees it. It is a string,
// so text/template compares, tests, measures and slices the real value;
// its String method, which text/template and fmt call to print it, yields
// the value's marker: markerPrefix, the value in hex, then "Z".
type mdValue string

// String returns v's marker.
func (v mdValue) String() string {
	return markerPrefix + hex.EncodeToString([]byte(v)) + "Z"
}

// markerPrefix starts every marker and placeholder: random letters that
// are not hex digits, so a marker cannot be confused with the author's text
// and survives goldmark unchanged (no punctuation, nothing a link or
// emphasis rule reacts to). It is chosen per process because String has no
// Renderer to ask.
var markerPrefix = func() string {
	const letters = "ghijklmnopqrstuvwxy" // not hex digits, not "Z"
	b := make([]byte, 12)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	p := []byte("Q")
	for _, c := range b {
		p = append(p, letters[int(c)%len(letters)])
	}
	return string(p)
}()

// skeletons holds the rendered skeletons of one Renderer.
type skeletons struct {
	prefix string // markerPrefix; a field so tests can read it
	// verify makes markdownBody check each skeleton against a plain run of
	// the template (set when the template uses printf).
	verify bool

	mu    sync.RWMutex
	pages map[string]*mdPage

	fmtOnce sync.Once
	fmt     bool // see formatsValues
}

// formatsValues reports whether the template hands values to a builtin
// that formats them with fmt (print, printf, println, html, js, urlquery,
// call) or calls their String method, or uses a template function
// (funcs.go): those see the marker, not the value, so len (print .v),
// urlquery .v or eq (print .v) "x" would be wrong, and every skeleton is
// checked against a plain run.
func (s *skeletons) formatsValues(t *ttemplate.Template) bool {
	s.fmtOnce.Do(func() {
		for _, tt := range t.Templates() {
			if tt.Tree != nil && formatsNode(tt.Tree.Root) {
				s.fmt = true
			}
		}
	})
	return s.fmt
}

func formatsNode(n parse.Node) bool {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return false
		}
		return slices.ContainsFunc(n.Nodes, formatsNode)
	case *parse.ActionNode:
		return formatsNode(n.Pipe)
	case *parse.PipeNode:
		if n == nil {
			return false
		}
		for _, c := range n.Cmds {
			if slices.ContainsFunc(c.Args, formatsNode) {
				return true
			}
		}
	case *parse.IfNode:
		return formatsNode(n.Pipe) || formatsNode(n.List) || formatsNode(n.ElseList)
	case *parse.RangeNode:
		return formatsNode(n.Pipe) || formatsNode(n.List) || formatsNode(n.ElseList)
	case *parse.WithNode:
		return formatsNode(n.Pipe) || formatsNode(n.List) || formatsNode(n.ElseList)
	case *parse.TemplateNode:
		return formatsNode(n.Pipe)
	case *parse.IdentifierNode:
		switch n.Ident {
		case "print", "printf", "println", "html", "js", "urlquery", "call":
			return true
		}
		// A template function sees the real value (markdownFunc), but
		// one fed another's output may still cut a marker.
		return isTemplateFunc(n.Ident)
	case *parse.FieldNode:
		return slices.Contains(n.Ident, "String")
	case *parse.VariableNode:
		return slices.Contains(n.Ident, "String")
	case *parse.ChainNode:
		return formatsNode(n.Node) || slices.Contains(n.Field, "String")
	}
	return false
}

// mdPage is one rendered skeleton: its HTML and plain text with
// placeholders, and, when no image source holds a placeholder, the HTML
// with its images already embedded.
type mdPage struct {
	html string
	text string // textWriter's, with heading marks (see fillHeadings)

	embedded string // html after embedImages, when embedOK
	embeds   []*fileData
	embedOK  bool

	// whole is embedded in the layout with its CSS inlined, and
	// wholeSlots its placeholders, when wholeOK (Renderer.wholePage).
	whole      string
	wholeSlots []slot
	wholeOK    bool

	// slots are the placeholders of the HTML filled per recipient
	// (embedded when embedOK, else html).
	slots []slot
}

func newSkeletons() *skeletons {
	return &skeletons{prefix: markerPrefix, pages: map[string]*mdPage{}}
}

func (s *skeletons) get(skel string) *mdPage {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.pages[skel]
}

func (s *skeletons) put(skel string, p *mdPage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pages) < maxSkeletons {
		s.pages[skel] = p
	}
}

// skeletonize replaces every marker in src by the placeholder prefix+"w"+
// its index+"Z" and returns the decoded values in that order. ok is false
// when a marker was cut or changed by the template (printf "%.3s" of a
// value, say): the caller then renders the old way.
func (s *skeletons) skeletonize(src string) (skel string, vals []string, ok bool) {
	if !strings.Contains(src, s.prefix) {
		return src, nil, true
	}
	var b strings.Builder
	b.Grow(len(src))
	for {
		i := strings.Index(src, s.prefix)
		if i < 0 {
			b.WriteString(src)
			break
		}
		b.WriteString(src[:i])
		rest := src[i+len(s.prefix):]
		end := strings.IndexByte(rest, 'Z')
		if end < 0 {
			return "", nil, false
		}
		v, err := hex.DecodeString(rest[:end])
		if err != nil {
			return "", nil, false
		}
		b.WriteString(s.placeholder(len(vals)))
		vals = append(vals, string(v))
		src = rest[end+1:]
	}
	return b.String(), vals, true
}

func (s *skeletons) placeholder(i int) string {
	return s.prefix + "w" + strconv.Itoa(i) + "Z"
}

// fill replaces the placeholders in t by esc of their values.
func (s *skeletons) fill(t string, vals []string, esc func(string) string) string {
	if len(vals) == 0 || !strings.Contains(t, s.prefix) {
		return t
	}
	var b strings.Builder
	b.Grow(len(t) + len(t)/4)
	for {
		i := strings.Index(t, s.prefix)
		if i < 0 {
			b.WriteString(t)
			return b.String()
		}
		b.WriteString(t[:i])
		n, size := s.index(t[i:], len(vals))
		if n < 0 {
			// Not one of ours (cannot happen: the prefix is random);
			// copy it through rather than lose text.
			b.WriteString(t[i : i+len(s.prefix)])
			t = t[i+len(s.prefix):]
			continue
		}
		b.WriteString(esc(vals[n]))
		t = t[i+size:]
	}
}

// index parses the placeholder at the start of t: its value index and
// length, or -1.
func (s *skeletons) index(t string, n int) (int, int) {
	rest := t[len(s.prefix):]
	if !strings.HasPrefix(rest, "w") {
		return -1, 0
	}
	end := strings.IndexByte(rest, 'Z')
	if end < 2 {
		return -1, 0
	}
	k, err := strconv.Atoi(rest[1:end])
	if err != nil || k < 0 || k >= n {
		return -1, 0
	}
	return k, len(s.prefix) + end + 1
}

// fillText puts the values into a skeleton's text as they are. A blank
// value at the end or the start of a line leaves no blank behind, as the
// trimming of each block did when values went through goldmark.
func (s *skeletons) fillText(t string, vals []string) string {
	if len(vals) == 0 || !strings.Contains(t, s.prefix) {
		return t
	}
	b := make([]byte, 0, len(t)+len(t)/4)
	for {
		i := strings.Index(t, s.prefix)
		if i < 0 {
			return string(append(b, t...))
		}
		b = append(b, t[:i]...)
		n, size := s.index(t[i:], len(vals))
		if n < 0 {
			b = append(b, s.prefix...) // a heading mark: fillHeadings's
			t = t[i+len(s.prefix):]
			continue
		}
		v := cleanValue(vals[n])
		t = t[i+size:]
		if v == "" {
			if t == "" || t[0] == '\n' {
				b = bytes.TrimRight(b, " ")
			}
			if len(b) == 0 || b[len(b)-1] == '\n' {
				t = strings.TrimLeft(t, " ")
			}
		}
		b = append(b, v...)
	}
}

// fillHTML puts the values into rendered HTML with the escaping each place
// needs, so a value can never end the text, attribute or element it is in:
// HTML-escaped in text; in a tag also ' escaped, and blanks, = and ` too
// outside quotes (an unquoted value, an attribute or tag name); in a URL
// attribute first URL-escaped the way goldmark escapes a link target,
// without a scheme of its own beyond http, https and mailto; JavaScript-
// or CSS-escaped in <script>, <style>, on* and style attributes.
func (s *skeletons) fillHTML(h string, vals []string) string {
	if len(vals) == 0 || !strings.Contains(h, s.prefix) {
		return h
	}
	return fillSlots(h, s.scanHTML(h, len(vals)), vals)
}

// A slot is one placeholder of a skeleton's HTML and the place it is in,
// found once per skeleton by scanHTML: the places depend on the author's
// HTML only, so each recipient's fill is a copy with no scan.
type slot struct {
	at, end int // h[at:end] is the placeholder
	idx     int // its value
	kind    slotKind
	attr    string // slotAttr: the attribute's name, lower case
	quote   byte   // slotAttr: its quote, 0 for none
	valAt   int    // slotAttr: where in h the attribute's value starts
	lt      int    // slotTagName: where in h the tag's "<" is
}

type slotKind uint8

const (
	slotText    slotKind = iota // text: HTML-escaped
	slotTagName                 // would name a tag: its "<" becomes "&lt;"
	slotScript                  // inside <script>
	slotStyle                   // inside <style>
	slotAttr                    // inside a tag: an attribute's value or name
)

// scanHTML finds the n-valued placeholders of h and the place of each.
func (s *skeletons) scanHTML(h string, n int) []slot {
	var (
		slots []slot
		inTag bool
		quote byte
		attr  string // the attribute whose value the scan is in
		valAt int    // h[valAt:] starts that value
		tagAt int    // h[tagAt:] starts with the tag's name
		raw   string // "script" or "style" inside such an element
	)
	for i := 0; i < len(h); {
		c := h[i]
		if c == s.prefix[0] && strings.HasPrefix(h[i:], s.prefix) {
			if k, size := s.index(h[i:], n); k >= 0 {
				sl := slot{at: i, end: i + size, idx: k}
				switch {
				case raw == "script":
					sl.kind = slotScript
				case raw == "style":
					sl.kind = slotStyle
				case inTag && i == tagAt:
					// The value would name the tag: show it as text.
					sl.kind, sl.lt = slotTagName, strings.LastIndexByte(h[:i], '<')
					inTag = false
				case !inTag:
					sl.kind = slotText
				default:
					sl.kind, sl.attr, sl.quote, sl.valAt = slotAttr, attr, quote, valAt
				}
				slots = append(slots, sl)
				i += size
				continue
			}
		}
		switch {
		case raw != "":
			if c == '<' && i+1 < len(h) && h[i+1] == '/' && len(h)-i-2 >= len(raw) && strings.EqualFold(h[i+2:i+2+len(raw)], raw) {
				raw, inTag, attr, tagAt = "", true, "", i+1
			}
		case !inTag:
			if c == '<' && i+1 < len(h) && (isASCIILetter(h[i+1]) || h[i+1] == '/' || h[i+1] == '!' || h[i+1] == '?') {
				inTag, attr, tagAt = true, "", i+1
				if h[i+1] == '/' {
					tagAt = i + 2
				}
			}
		case quote != 0:
			if c == quote {
				quote, attr = 0, ""
			}
		case c == '"' || c == '\'':
			quote = c
			valAt = i + 1
		case c == '=':
			attr = strings.ToLower(lastWord(h[:i]))
			valAt = i + 1
		case c == '>':
			inTag, attr = false, ""
			if name := strings.ToLower(lastWord(h[tagAt : tagAt+tagNameLen(h[tagAt:])])); h[tagAt-1] == '<' && (name == "script" || name == "style") {
				raw = name
			}
		}
		i++
	}
	return slots
}

// fillSlots copies h with each slot's value escaped for its place.
func fillSlots(h string, slots []slot, vals []string) string {
	var b strings.Builder
	b.Grow(len(h) + len(h)/4)
	last := 0
	// outAt is where h[p:] starts in b, for a p after the last slot
	// written or, through done, after any earlier one.
	type written struct{ end, out int }
	var done []written
	outAt := func(p int) int {
		for j := len(done) - 1; j >= 0; j-- {
			if done[j].end <= p {
				return done[j].out + p - done[j].end
			}
		}
		return p
	}
	for _, sl := range slots {
		v := cleanValue(vals[sl.idx])
		switch sl.kind {
		case slotScript:
			v = jsEscape(v)
		case slotStyle:
			v = cssEscape(v)
		case slotTagName:
			b.WriteString(h[last:sl.lt])
			b.WriteString("&lt;")
			last = sl.lt + 1
			v = string(util.EscapeHTML([]byte(v)))
		case slotText:
			v = string(util.EscapeHTML([]byte(v)))
		case slotAttr:
			switch {
			case urlAttrs[sl.attr]:
				b.WriteString(h[last:sl.at])
				last = sl.at
				prefix := b.String()[min(outAt(sl.valAt), b.Len()):]
				v = guardScheme(prefix, string(util.URLEscape([]byte(v), true)))
				if strings.TrimSpace(prefix) != "" {
					v = componentEscape(v)
				}
			case sl.attr == "style":
				v = cssEscape(v)
			case strings.HasPrefix(sl.attr, "on"):
				v = jsEscape(v)
			}
			v = escapeAttr(v, sl.quote)
		}
		b.WriteString(h[last:sl.at])
		b.WriteString(v)
		last = sl.end
		done = append(done, written{end: sl.end, out: b.Len()})
	}
	b.WriteString(h[last:])
	return b.String()
}

// tagNameLen is the length of the tag name at the start of s.
func tagNameLen(s string) int {
	i := 0
	for i < len(s) && (isASCIILetter(s[i]) || s[i] >= '0' && s[i] <= '9' || s[i] == '-') {
		i++
	}
	return i
}

// urlAttrs are the attributes whose value a browser reads as a URL.
var urlAttrs = map[string]bool{
	"href": true, "src": true, "action": true, "formaction": true, "background": true,
	"poster": true, "cite": true, "data": true, "longdesc": true, "srcset": true,
	"xlink:href": true, "lowsrc": true, "dynsrc": true, "ping": true, "codebase": true,
}

// componentEscape percent-encodes ?, # and & in a value that is part of a
// URL the author started (https://x/u/{{.id}}, mailto:{{.user}}@x): there
// it is a path segment or a parameter's value, and must not add a query,
// a parameter, a fragment or a mailto header (?cc=). A value that is the
// whole URL keeps them.
func componentEscape(v string) string {
	if !strings.ContainsAny(v, "?#&") {
		return v
	}
	return strings.NewReplacer("?", "%3F", "#", "%23", "&", "%26").Replace(v)
}

// guardScheme keeps a value from giving a URL a scheme other than http,
// https or mailto: when the attribute text before it (prefix) has no
// scheme yet and prefix+v would end one, the colon is percent-encoded and
// the URL becomes a harmless relative one (javascript:, data:, vbscript:).
func guardScheme(prefix, v string) string {
	p := strings.TrimLeft(prefix, " \t\n\r\f")
	if strings.ContainsAny(p, ":/?#") {
		return v
	}
	j := strings.IndexAny(v, ":/?#")
	if j < 0 || v[j] != ':' {
		return v
	}
	switch strings.ToLower(p + v[:j]) {
	case "http", "https", "mailto":
		return v
	}
	return v[:j] + "%3A" + v[j+1:]
}

// escapeAttr HTML-escapes v for a tag, ' included unless the value is in
// double quotes; unquoted (quote 0), also the blanks, =, / and ` that
// would end the value or name.
func escapeAttr(v string, quote byte) string {
	unquoted := quote == 0
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '&':
			b.WriteString("&amp;")
		case c == '<':
			b.WriteString("&lt;")
		case c == '>':
			b.WriteString("&gt;")
		case c == '"':
			b.WriteString("&quot;")
		case c == '\'' && quote != '"':
			b.WriteString("&#39;")
		case unquoted && (c == '=' || c == '`' || c == '/' || c <= ' '):
			b.WriteString("&#" + strconv.Itoa(int(c)) + ";")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// jsEscape makes v inert in JavaScript: every ASCII character but letters
// and digits becomes \xHH, which is literal inside a string and a syntax
// error outside one.
func jsEscape(v string) string {
	return asciiEscape(v, func(c byte) string { return fmt.Sprintf("\\x%02x", c) })
}

// cssEscape makes v one inert CSS identifier: every ASCII character but
// letters and digits becomes a hex escape.
func cssEscape(v string) string {
	return asciiEscape(v, func(c byte) string { return fmt.Sprintf("\\%x ", c) })
}

func asciiEscape(v string, esc func(byte) string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x80 && !isASCIILetter(c) && (c < '0' || c > '9') {
			b.WriteString(esc(c))
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// lastWord is the attribute name just before an "=": the letters, digits
// and dashes at the end of s, blanks skipped.
func lastWord(s string) string {
	s = strings.TrimRight(s, " \t\n\r\f")
	i := len(s)
	for i > 0 && (isASCIILetter(s[i-1]) || s[i-1] >= '0' && s[i-1] <= '9' || s[i-1] == '-' || s[i-1] == '_' || s[i-1] == ':') {
		i--
	}
	return s[i:]
}

func isASCIILetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// cleanValue is a value as it appears in the body: trimmed, and its line
// breaks made spaces, as mdEscape does, so a value reads the same in the
// HTML and the text part.
func cleanValue(v string) string {
	v = strings.TrimFunc(v, unicode.IsSpace)
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(v)
	}
	return v
}

// mdData is the Markdown template's data: every CSV column as an mdValue,
// or as a plain string when plain is set, trimmed as mdEscape trims so
// {{if .x}} is false for a blank value, plus .Vars.
func (r *Renderer) mdData(fields map[string]string, plain bool) map[string]any {
	d := make(map[string]any, len(fields)+1)
	for k, v := range fields {
		v = strings.TrimFunc(v, unicode.IsSpace)
		if plain {
			d[k] = v
		} else {
			d[k] = mdValue(v)
		}
	}
	d["Vars"] = r.cfg.Vars
	return d
}

// mdBody is a rendered Markdown body; embedded says its local images are
// already cid: references, listed in embeds, and whole that html is the
// whole page, in the layout, with its CSS inlined.
type mdBody struct {
	html, text string
	embeds     []*fileData
	embedded   bool
	whole      bool
}

// markdownBody renders the Markdown body of one recipient through the
// skeleton cache; see the comment at the top of this file.
func (r *Renderer) markdownBody(fields map[string]string) (mdBody, error) {
	src, err := execText(r.markdown, r.mdData(fields, false))
	if err != nil {
		return mdBody{}, err
	}
	skel, vals, ok := r.skel.skeletonize(src)
	for _, v := range vals {
		// A value holding the prefix (it is random, but not secret from
		// a template that prints a marker) would be read as a placeholder
		// or heading mark by fillText and fillHeadings.
		ok = ok && !strings.Contains(v, r.skel.prefix)
	}
	if ok && (r.skel.verify || r.skel.formatsValues(r.markdown)) {
		// The skeleton filled with the plain values must be exactly what
		// the template prints from them, or a marker was cut or encoded.
		want, err := execText(r.markdown, r.mdData(fields, true))
		if err != nil {
			return mdBody{}, err
		}
		ok = r.skel.fill(skel, vals, func(v string) string { return v }) == want
	}
	if !ok {
		// Render this recipient as before: the values escaped as Markdown
		// text, then goldmark.
		if src, err = execText(r.markdown, r.data(fields, mdEscape)); err != nil {
			return mdBody{}, err
		}
		var out mdBody
		if out.html, out.text, err = r.markdownToHTML([]byte(src)); err != nil {
			return mdBody{}, fmt.Errorf("%s: markdown: %w", r.bodyFile, err)
		}
		return out, nil
	}
	page := r.skel.get(skel)
	if page == nil {
		if page, err = r.newPage(skel, len(vals)); err != nil {
			return mdBody{}, err
		}
		r.skel.put(skel, page)
	}
	text := r.skel.fillHeadings(r.skel.fillText(page.text, vals))
	if page.wholeOK {
		return mdBody{html: fillSlots(page.whole, page.wholeSlots, vals), text: text, embeds: embedsOf(page), embedded: true, whole: true}, nil
	}
	if page.embedOK {
		return mdBody{html: fillSlots(page.embedded, page.slots, vals), text: text, embeds: embedsOf(page), embedded: true}, nil
	}
	return mdBody{html: fillSlots(page.html, page.slots, vals), text: text}, nil
}

// embedsOf is a copy of the page's embedded images, which the layout's may
// be appended to.
func embedsOf(p *mdPage) []*fileData {
	return append([]*fileData(nil), p.embeds...)
}

// newPage renders a skeleton: HTML, text, and, unless an image's source
// holds a value, the HTML with its images embedded.
func (r *Renderer) newPage(skel string, n int) (*mdPage, error) {
	src := []byte(skel)
	html, doc, err := r.parseMarkdown(src)
	if err != nil {
		return nil, fmt.Errorf("%s: markdown: %w", r.bodyFile, err)
	}
	tw := textWriter{src: src, marks: r.skel.prefix}
	p := &mdPage{html: html, text: tw.document(doc)}
	if !r.skel.imageHasValue(html) {
		// An error (a missing image) is not kept: every recipient gets it
		// from its own embedImages, as before.
		if e, used, err := r.embedImages(html, r.bodyFile, nil); err == nil {
			p.embedded, p.embeds, p.embedOK = e, used, true
		}
	}
	if p.embedOK {
		p.slots = r.skel.scanHTML(p.embedded, n)
		if r.inline {
			p.whole, p.wholeSlots, p.wholeOK = r.wholePage(p.embedded, n)
		}
	} else {
		p.slots = r.skel.scanHTML(p.html, n)
	}
	return p, nil
}

// imageHasValue reports whether an <img> tag of h holds a placeholder: its
// source may then differ per recipient.
func (s *skeletons) imageHasValue(h string) bool {
	for i := 0; ; {
		t, ok := nextTag(h, i)
		if !ok {
			return false
		}
		if t.name == "img" && strings.Contains(h[i:t.end], s.prefix) {
			return true
		}
		i = t.end
	}
}

// fillHeadings turns the heading marks textWriter left in a skeleton's
// text into underlines as wide as the filled heading (displayWidth):
// prefix+"hZ" opens a heading, prefix+"u=Z" (or "u-Z") after its text
// stands for the line.
func (s *skeletons) fillHeadings(t string) string {
	open := s.prefix + "hZ"
	if !strings.Contains(t, open) {
		return t
	}
	var b strings.Builder
	b.Grow(len(t) + 64)
	for {
		i := strings.Index(t, open)
		if i < 0 {
			b.WriteString(t)
			return b.String()
		}
		b.WriteString(t[:i])
		t = t[i+len(open):]
		j := strings.Index(t, s.prefix+"u")
		nl := strings.LastIndexByte(t[:max(j, 0)], '\n')
		if j < 0 || nl < 0 || len(t) < j+len(s.prefix)+3 {
			b.WriteString(t) // cannot happen: textWriter writes both
			return b.String()
		}
		head := strings.TrimSpace(t[:nl])
		lead := t[nl+1 : j] // "> " when the heading is in a quote
		line := t[j+len(s.prefix)+1 : j+len(s.prefix)+2]
		b.WriteString(head)
		b.WriteByte('\n')
		b.WriteString(lead)
		b.WriteString(strings.Repeat(line, displayWidth(head)))
		t = t[j+len(s.prefix)+3:]
	}
}
