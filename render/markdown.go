package render

import (
	"bytes"
	"strconv"
	"strings"
	"unicode"

	"github.com/rivo/uniseg"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	east "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/renderer/html"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
)

// newMarkdown builds the one goldmark instance a Renderer shares between
// goroutines (goldmark is safe for concurrent use). WithUnsafe keeps the
// author's raw HTML; CSV values cannot carry any: they reach goldmark only
// as placeholders (skeleton.go) or escaped by mdEscape.
func newMarkdown() goldmark.Markdown {
	return goldmark.New(
		goldmark.WithExtensions(extension.GFM),
		goldmark.WithRendererOptions(html.WithUnsafe()),
	)
}

// mdEscape makes a CSV value literal text inside Markdown, for the rare
// template whose printf cut a value's marker (see markdownBody). The characters
// HTML cares about become entities rather than backslash escapes because an
// entity stays inert even where Markdown passes the source through verbatim
// (raw HTML blocks and inline tags written by the author); every other ASCII
// punctuation character is backslash-escaped (CommonMark 2.4), which defeats
// emphasis, links, images, autolinks, tables and block markers. Line breaks
// become spaces and surrounding blanks are trimmed so a value can neither
// start a block (indented code, lists, headings) nor end a line with a hard
// break.
func mdEscape(s string) string {
	s = strings.TrimFunc(s, unicode.IsSpace)
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x80 && (util.IsPunct(c) || c == '\r' || c == '\n') {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/2)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\r' || c == '\n':
			b.WriteByte(' ')
		case c == '&':
			b.WriteString("&amp;")
		case c == '<':
			b.WriteString("&lt;")
		case c == '>':
			b.WriteString("&gt;")
		case c == '"':
			b.WriteString("&quot;")
		case c == '\'':
			b.WriteString("&#39;")
		case c < 0x80 && util.IsPunct(c):
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isBlank(r rune) bool {
	return r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '\v' || r == '\f'
}

// markdownToHTML converts one recipient's Markdown to HTML and derives the
// plain-text alternative from the same AST, so both parts agree.
func (r *Renderer) markdownToHTML(src []byte) (htmlOut, plain string, err error) {
	htmlOut, doc, err := r.parseMarkdown(src)
	if err != nil {
		return "", "", err
	}
	tw := textWriter{src: src}
	return htmlOut, tw.document(doc), nil
}

// parseMarkdown runs goldmark on src and returns the HTML and the AST.
func (r *Renderer) parseMarkdown(src []byte) (string, ast.Node, error) {
	doc := r.md.Parser().Parse(text.NewReader(src), parser.WithContext(parser.NewContext()))
	var buf bytes.Buffer
	buf.Grow(len(src) * 2)
	if err := r.md.Renderer().Render(&buf, src, doc); err != nil {
		return "", nil, err
	}
	return buf.String(), doc, nil
}

// textWriter turns a goldmark AST into readable plain text: the text/plain
// part of a Markdown message when the campaign gives no text template.
type textWriter struct {
	src []byte
	// marks, when set, is the skeleton prefix (skeleton.go): headings are
	// then written with marks instead of underlines, which fillHeadings
	// draws once the recipient's values are in and the width is known.
	marks string
}

func (t *textWriter) document(doc ast.Node) string {
	s := t.blocks(doc, "\n\n")
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	return s + "\n"
}

// blocks renders the block children of n separated by sep, skipping blocks
// that produce nothing (raw HTML blocks).
func (t *textWriter) blocks(n ast.Node, sep string) string {
	var parts []string
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		if s := t.block(c); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, sep)
}

func (t *textWriter) block(n ast.Node) string {
	switch n := n.(type) {
	case *ast.Paragraph, *ast.TextBlock:
		return strings.TrimSpace(t.inline(n))
	case *ast.Heading:
		s := strings.TrimSpace(t.inline(n))
		line := ""
		switch n.Level {
		case 1:
			line = "="
		case 2:
			line = "-"
		}
		switch {
		case line == "":
			return s
		case t.marks != "":
			return t.marks + "hZ" + s + "\n" + t.marks + "u" + line + "Z"
		}
		return s + "\n" + strings.Repeat(line, displayWidth(s))
	case *ast.List:
		sep := "\n\n"
		if n.IsTight {
			sep = "\n"
		}
		num := n.Start
		var items []string
		for c := n.FirstChild(); c != nil; c = c.NextSibling() {
			marker := "* "
			if n.IsOrdered() {
				marker = strconv.Itoa(num) + ". "
				num++
			}
			body := t.blocks(c, sep)
			items = append(items, prefixLines(body, marker, strings.Repeat(" ", len(marker))))
		}
		return strings.Join(items, sep)
	case *ast.Blockquote:
		return prefixLines(t.blocks(n, "\n\n"), "> ", "> ")
	case *ast.FencedCodeBlock, *ast.CodeBlock:
		var b strings.Builder
		lines := n.Lines()
		for i := 0; i < lines.Len(); i++ {
			seg := lines.At(i)
			line := strings.TrimRight(string(seg.Value(t.src)), "\r\n")
			b.WriteString("    ")
			b.WriteString(line)
			if i < lines.Len()-1 {
				b.WriteByte('\n')
			}
		}
		return b.String()
	case *ast.ThematicBreak:
		return "----------"
	case *ast.HTMLBlock:
		// The author's own HTML block (a <div> of text, a button link):
		// its text and link targets belong in the text part too.
		var raw strings.Builder
		lines := n.Lines()
		for i := 0; i < lines.Len(); i++ {
			seg := lines.At(i)
			raw.Write(seg.Value(t.src))
		}
		if n.HasClosure() {
			seg := n.ClosureLine
			raw.Write(seg.Value(t.src))
		}
		return strings.TrimSpace(htmlToText(raw.String()))
	case *east.Table:
		var rows []string
		for row := n.FirstChild(); row != nil; row = row.NextSibling() {
			var cells []string
			for cell := row.FirstChild(); cell != nil; cell = cell.NextSibling() {
				cells = append(cells, strings.TrimSpace(t.inline(cell)))
			}
			rows = append(rows, strings.Join(cells, " | "))
		}
		return strings.Join(rows, "\n")
	}
	if n.Type() == ast.TypeInline {
		return t.inline(n)
	}
	return t.blocks(n, "\n\n")
}

// inline concatenates the inline content of n, with links as "text <url>"
// and images as their alt text.
func (t *textWriter) inline(n ast.Node) string {
	var b strings.Builder
	t.inlineTo(&b, n)
	return b.String()
}

func (t *textWriter) inlineTo(b *strings.Builder, n ast.Node) {
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		switch c := c.(type) {
		case *ast.Text:
			b.Write(unescapeMarkdown(c.Segment.Value(t.src)))
			if c.HardLineBreak() || c.SoftLineBreak() {
				b.WriteByte('\n')
			}
		case *ast.String:
			b.Write(unescapeMarkdown(c.Value))
		case *ast.CodeSpan:
			for g := c.FirstChild(); g != nil; g = g.NextSibling() {
				if tx, ok := g.(*ast.Text); ok {
					b.Write(tx.Segment.Value(t.src))
				} else if s, ok := g.(*ast.String); ok {
					b.Write(s.Value)
				}
			}
		case *ast.Link:
			label := t.inline(c)
			dest := string(unescapeMarkdown(c.Destination))
			b.WriteString(label)
			if dest != "" && dest != label && dest != "mailto:"+label {
				b.WriteString(" <" + dest + ">")
			}
		case *ast.AutoLink:
			b.Write(c.URL(t.src))
		case *ast.Image:
			b.WriteString(t.inline(c))
		case *east.Strikethrough:
			// The struck text stays readable, and marked as struck: a
			// price cut "~~10 EUR~~ 8 EUR" must not read "10 EUR 8 EUR".
			// GFM takes one tilde or two; "~~" is the usual spelling.
			b.WriteString("~~")
			t.inlineTo(b, c)
			b.WriteString("~~")
		case *ast.RawHTML:
			// The author's inline tags carry no readable text.
		case *east.TaskCheckBox:
			if c.IsChecked {
				b.WriteString("[x] ")
			} else {
				b.WriteString("[ ] ")
			}
		default:
			t.inlineTo(b, c)
		}
	}
}

// unescapeMarkdown resolves backslash escapes and character references the
// way goldmark's HTML writer does, but without HTML-escaping the result.
func unescapeMarkdown(v []byte) []byte {
	if bytes.IndexByte(v, '\\') < 0 && bytes.IndexByte(v, '&') < 0 {
		return v
	}
	v = util.UnescapePunctuations(v)
	v = util.ResolveNumericReferences(v)
	return util.ResolveEntityNames(v)
}

// prefixLines puts first before the first line of s and rest before every
// following non-empty line (list markers, blockquote markers).
func prefixLines(s, first, rest string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		switch {
		case i == 0:
			lines[i] = first + l
		case l == "":
			lines[i] = strings.TrimRight(rest, " ")
		default:
			lines[i] = rest + l
		}
	}
	return strings.Join(lines, "\n")
}

// displayWidth is the number of columns s takes in a fixed-width font,
// which a heading's underline must match: a wide character (李, most
// emoji) takes two, a combining mark none (uniseg, after Unicode UAX #11
// and #29). Printable ASCII, the common case, is one column a byte.
func displayWidth(s string) int {
	if printable(s) && !strings.ContainsRune(s, '\t') {
		return len(s)
	}
	return uniseg.StringWidth(s)
}
