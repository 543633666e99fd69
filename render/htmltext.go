package render

import (
	"html"
	"strings"
)

// This file holds a small hand-written HTML scanner. golang.org/x/net/html is
// not a dependency, and the two jobs here (find <img src>, turn HTML into
// readable text) only need tags, attributes and entities, not a DOM.

// tag is one start or end tag found by nextTag.
type tag struct {
	start, end int    // byte span of the whole tag in the document
	name       string // lower-case element name
	closing    bool   // </name>
	attrs      string // raw attribute text (between the name and '>')
	attrsAt    int    // offset of attrs in the document
}

// nextTag finds the next tag at or after i, skipping comments, doctypes and
// processing instructions. It returns ok=false when there is none.
func nextTag(s string, i int) (t tag, ok bool) {
	for {
		j := strings.IndexByte(s[i:], '<')
		if j < 0 {
			return tag{}, false
		}
		i += j
		if strings.HasPrefix(s[i:], "<!--") {
			k := strings.Index(s[i+4:], "-->")
			if k < 0 {
				return tag{}, false
			}
			i += 4 + k + 3
			continue
		}
		if i+1 < len(s) && (s[i+1] == '!' || s[i+1] == '?') {
			k := strings.IndexByte(s[i:], '>')
			if k < 0 {
				return tag{}, false
			}
			i += k + 1
			continue
		}
		p := i + 1
		closing := false
		if p < len(s) && s[p] == '/' {
			closing = true
			p++
		}
		n := p
		for n < len(s) && isTagNameByte(s[n]) {
			n++
		}
		if n == p {
			i++ // a lone '<' in text
			continue
		}
		// Find the closing '>' outside quoted attribute values.
		var quote byte
		e := n
		for ; e < len(s); e++ {
			c := s[e]
			if quote != 0 {
				if c == quote {
					quote = 0
				}
				continue
			}
			if c == '"' || c == '\'' {
				quote = c
			} else if c == '>' {
				break
			}
		}
		if e >= len(s) {
			return tag{}, false
		}
		return tag{start: i, end: e + 1, name: strings.ToLower(s[p:n]), closing: closing,
			attrs: s[n:e], attrsAt: n}, true
	}
}

func isTagNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == ':'
}

// attr returns the decoded value of the named attribute and the byte span
// of its raw value (including quotes) relative to t.attrs.
func (t tag) attr(name string) (val string, vs, ve int, ok bool) {
	a := t.attrs
	i := 0
	for i < len(a) {
		for i < len(a) && (isSpaceByte(a[i]) || a[i] == '/') {
			i++
		}
		ns := i
		for i < len(a) && !isSpaceByte(a[i]) && a[i] != '=' && a[i] != '>' && a[i] != '/' {
			i++
		}
		key := a[ns:i]
		if key == "" {
			i++
			continue
		}
		for i < len(a) && isSpaceByte(a[i]) {
			i++
		}
		if i >= len(a) || a[i] != '=' {
			if strings.EqualFold(key, name) {
				return "", i, i, true
			}
			continue
		}
		i++
		for i < len(a) && isSpaceByte(a[i]) {
			i++
		}
		vs = i
		var raw string
		if i < len(a) && (a[i] == '"' || a[i] == '\'') {
			q := a[i]
			k := strings.IndexByte(a[i+1:], q)
			if k < 0 {
				raw, i = a[i+1:], len(a)
			} else {
				raw, i = a[i+1:i+1+k], i+k+2
			}
		} else {
			for i < len(a) && !isSpaceByte(a[i]) {
				i++
			}
			raw = a[vs:i]
		}
		if strings.EqualFold(key, name) {
			return html.UnescapeString(raw), vs, i, true
		}
	}
	return "", 0, 0, false
}

func isSpaceByte(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}

// blockTags end a line of text; paraTags also leave a blank line.
var (
	paraTags = map[string]bool{"p": true, "div": true, "h1": true, "h2": true, "h3": true,
		"h4": true, "h5": true, "h6": true, "ul": true, "ol": true, "table": true,
		"blockquote": true, "pre": true, "hr": true, "section": true, "article": true,
		"header": true, "footer": true, "center": true, "dl": true, "address": true,
		"figure": true, "main": true, "nav": true, "aside": true, "form": true}
	lineTags = map[string]bool{"br": true, "tr": true, "li": true, "dt": true, "dd": true,
		"caption": true, "tbody": true, "thead": true, "tfoot": true}
	skipTags = map[string]bool{"script": true, "style": true, "head": true, "title": true,
		"template": true, "noscript": true}
)

// htmlToText converts an HTML body into readable plain text: block elements
// become line breaks, links read "text <url>", images their alt text, list
// items get "* ", table cells are joined with " | ", entities are decoded.
// The contents of script, style, head and similar elements are dropped.
func htmlToText(s string) string {
	s = stripComments(s)
	var p plainText
	p.b.Grow(len(s) / 2)
	// The stack of open <a> elements lives in this frame rather than in p,
	// so that the compiler can keep its backing arrays off the heap.
	var (
		href      []string // targets
		linkStart []int    // where the text of each begins in p.b
	)
	i := 0
	for {
		t, ok := nextTag(s, i)
		if !ok {
			p.text(s[i:])
			break
		}
		p.text(s[i:t.start])
		i = t.end
		if skipTags[t.name] && !t.closing {
			k := strings.Index(strings.ToLower(s[i:]), "</"+t.name)
			if k < 0 {
				break
			}
			i += k
			continue
		}
		switch {
		case t.name == "a" && !t.closing:
			h, _, _, _ := t.attr("href")
			href = append(href, strings.TrimSpace(h))
			linkStart = append(linkStart, p.b.Len())
		case t.name == "a" && t.closing && len(href) > 0:
			p.closeLink(href[len(href)-1], linkStart[len(linkStart)-1])
			href, linkStart = href[:len(href)-1], linkStart[:len(linkStart)-1]
		default:
			p.tag(t)
		}
	}
	return tidyText(p.b.String())
}

// plainText is the text htmlToText writes, and the state of the elements
// it is inside, except <a> (see htmlToText).
type plainText struct {
	b    strings.Builder
	pre  int // depth of open <pre>, where blanks are kept
	cell int // cells written in the current table row
}

// newlines tops the trailing newlines of the text up to n, except at the
// very start.
func (p *plainText) newlines(n int) {
	cur := p.b.String()
	have := 0
	for k := len(cur) - 1; k >= 0 && cur[k] == '\n'; k-- {
		have++
	}
	if len(cur) == 0 {
		return
	}
	for ; have < n; have++ {
		p.b.WriteByte('\n')
	}
}

// text writes raw character data with its entities decoded; outside <pre>
// every run of blanks becomes one space.
func (p *plainText) text(raw string) {
	t := html.UnescapeString(raw)
	if t == "" {
		return
	}
	if p.pre > 0 {
		p.b.WriteString(t)
		return
	}
	cur := p.b.String()
	atStart := len(cur) == 0 || cur[len(cur)-1] == '\n' || cur[len(cur)-1] == ' '
	if isBlank(rune(t[0])) && !atStart {
		p.b.WriteByte(' ')
	}
	fields := strings.FieldsFunc(t, isBlank)
	for k, f := range fields {
		if k > 0 {
			p.b.WriteByte(' ')
		}
		p.b.WriteString(f)
	}
	if len(fields) > 0 && isBlank(rune(t[len(t)-1])) {
		p.b.WriteByte(' ')
	}
}

// tag writes what a start or end tag other than <a> stands for in plain
// text.
func (p *plainText) tag(t tag) {
	switch {
	case t.name == "pre":
		p.newlines(2)
		if t.closing {
			p.pre--
		} else {
			p.pre++
		}
	case paraTags[t.name]:
		p.newlines(2)
		if t.name == "hr" {
			p.b.WriteString("----------")
			p.newlines(2)
		}
	case t.name == "li" && !t.closing:
		p.newlines(1)
		p.b.WriteString("* ")
	case t.name == "tr":
		p.newlines(1)
		p.cell = 0
	case lineTags[t.name]:
		p.newlines(1)
	case (t.name == "td" || t.name == "th") && !t.closing:
		if p.cell > 0 {
			p.b.WriteString(" | ")
		}
		p.cell++
	case t.name == "img" && !t.closing:
		if alt, _, _, ok := t.attr("alt"); ok && alt != "" {
			p.text(alt)
		}
	}
}

// closeLink ends a link to h whose text began at start: the target follows
// the text as " <h>", unless it is a fragment or the text already says it.
func (p *plainText) closeLink(h string, start int) {
	label := strings.TrimSpace(p.b.String()[start:])
	if h == "" || strings.HasPrefix(h, "#") || h == label || h == "mailto:"+label {
		return
	}
	cur := p.b.String()
	if len(cur) > 0 && cur[len(cur)-1] == ' ' {
		p.b.Reset()
		p.b.WriteString(cur[:len(cur)-1])
	}
	p.b.WriteString(" <" + h + ">")
}

// tidyText trims trailing blanks on every line, collapses runs of blank
// lines into one and ends the text with a single newline.
func tidyText(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	blank := true
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\r")
		if l == "" {
			if blank {
				continue
			}
			blank = true
		} else {
			blank = false
		}
		out = append(out, l)
	}
	res := strings.TrimRight(strings.Join(out, "\n"), "\n")
	if res == "" {
		return ""
	}
	return res + "\n"
}

// stripComments removes <!-- ... --> (an unterminated one runs to the end).
func stripComments(s string) string {
	for {
		i := strings.Index(s, "<!--")
		if i < 0 {
			return s
		}
		j := strings.Index(s[i+4:], "-->")
		if j < 0 {
			return s[:i]
		}
		s = s[:i] + s[i+4+j+3:]
	}
}
