package render

import (
	"fmt"
	"strings"

	"github.com/vanng822/go-premailer/premailer"
)

// Many mail clients (Gmail's apps, Outlook) drop a message's <style> or
// parts of it, so the rules of the layout's and body's <style> blocks are
// copied into the style attribute of each element they select, with the
// cascade's order and specificity (go-premailer: selector specificity is
// not code to write here). What cannot be inlined (@media, :hover) stays
// in a <style> in the head.
//
// Inlining parses and writes the whole page, so it runs as seldom as the
// page changes: for a Markdown body in a layout that reads only .Body and
// .Vars (or no layout), once per skeleton, on the page with placeholders
// for the values (Renderer.wholePage), which are filled in afterwards with
// the escaping of the place they landed in; a value never passes through
// the inliner and cannot make or select CSS. Any other page (an HTML body,
// a layout that reads columns) is inlined per message after its values are
// in, escaped by html/template: the parser reads them back as the text or
// attribute values they are and writes them escaped again.

// wantsInline reports whether r inlines CSS: Config.InlineCSS is not
// false and the layout's or the body's source holds a <style>. A page
// without one is left byte for byte as it was; the inliner would rewrite
// it (a <head>, its own quoting) for nothing.
func (r *Renderer) wantsInline(sources ...string) bool {
	if p := r.cfg.InlineCSS; p != nil && !*p {
		return false
	}
	for _, s := range sources {
		if strings.Contains(strings.ToLower(s), "<style") {
			return true
		}
	}
	return false
}

// inlineCSS returns doc with the rules of its <style> blocks in style
// attributes. It fails only when the document cannot be written back.
func inlineCSS(doc string) (string, error) {
	p, err := premailer.NewPremailerFromString(doc, premailer.NewOptions())
	if err != nil {
		return "", fmt.Errorf("inline css: %w", err)
	}
	out, err := p.Transform()
	if err != nil {
		return "", fmt.Errorf("inline css: %w", err)
	}
	return out, nil
}

// inlineMessage inlines the CSS of c's whole page, per message: the pages
// Renderer.wholePage could not prepare. A failure is the layout's when
// there is one, else the body's.
func (r *Renderer) inlineMessage(c *content, errs *fieldErrors) {
	out, err := inlineCSS(c.html)
	if err != nil {
		field := "body"
		if r.layout != nil {
			field = "layout"
		}
		errs.add(field, err)
		return
	}
	c.html = out
}

// wholePage inlines the CSS of a Markdown skeleton's page in the layout,
// placeholders and all, for newPage to cache. ok is false when the page
// cannot be prepared once (the layout is run per message, the images are
// embedded per message) or when the inliner moved, doubled or dropped a
// placeholder (one in a <style> rule, say): the page is then inlined per
// message, after its values are in.
func (r *Renderer) wholePage(html string, n int) (page string, slots []slot, ok bool) {
	var before, after string
	if r.layout != nil {
		if r.layoutSplit == nil {
			return "", nil, false
		}
		before, after = r.layoutSplit.before, r.layoutSplit.after
	}
	doc := before + html + after
	out, err := inlineCSS(doc)
	if err != nil || strings.Count(out, r.skel.prefix) != strings.Count(doc, r.skel.prefix) {
		return "", nil, false
	}
	slots = r.skel.scanHTML(out, n)
	if len(slots) != strings.Count(doc, r.skel.prefix) {
		return "", nil, false
	}
	return out, slots, true
}
