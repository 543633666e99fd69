package render

import (
	htemplate "html/template"
	"strings"
	"text/template/parse"
)

// layoutSplit is a layout that reads nothing but .Body and .Vars, run once
// per Renderer: every message's HTML is before + body + after, and the
// layout's own images are embedded once. Running html/template and
// scanning the whole page for images per recipient was a twentieth of a
// send's CPU for the bundled newsletter.
type layoutSplit struct {
	before, after string
	embeds        []*fileData // the layout's images, in embedImages order
}

// splitLayout runs the layout once with a marker for .Body, or returns nil
// when the layout cannot be split: it reads a CSV column (or may: it uses
// dot itself), it uses .Body other than printing it ({{if .Body}} and
// {{len .Body}} depend on each body), its images cannot be embedded (each
// recipient then gets the error), or .Body is not HTML text in it exactly
// once (html/template escapes a template.HTML placed in an attribute or a
// script, so the marker is not found verbatim). A second run with an
// empty .Body must give the page without the marker: a place where the
// escaper changes or drops the marker (a <style>, a template called from
// another context) would otherwise put the marker's rendering in every
// message instead of the body's.
func (r *Renderer) splitLayout() *layoutSplit {
	for _, t := range r.layout.Templates() {
		if t.Tree != nil && !readsOnlyBodyAndVars(t.Tree.Root) {
			return nil
		}
	}
	id := markerPrefix + "body"
	marker := "<i>" + id + "</i>"
	var b strings.Builder
	data := map[string]any{"Vars": r.cfg.Vars, "Body": htemplate.HTML(marker)}
	if err := r.layout.Execute(&b, data); err != nil {
		return nil
	}
	out, embeds, err := r.embedImages(b.String(), r.cfg.Layout, nil)
	if err != nil {
		return nil
	}
	// The marker's name once, and there in the verbatim marker: .Body
	// escaped into an attribute elsewhere would hold it too.
	before, after, ok := strings.Cut(out, marker)
	if !ok || strings.Count(out, id) != 1 {
		return nil
	}
	if rb, ra, ok := strings.Cut(b.String(), marker); !ok || !r.layoutGives(rb+ra) {
		return nil
	}
	return &layoutSplit{before: before, after: after, embeds: embeds}
}

// layoutGives reports whether the layout run with an empty .Body gives want.
func (r *Renderer) layoutGives(want string) bool {
	var b strings.Builder
	data := map[string]any{"Vars": r.cfg.Vars, "Body": htemplate.HTML("")}
	return r.layout.Execute(&b, data) == nil && b.String() == want
}

// printsBody reports whether p is {{.Body}} or {{$.Body}}, followed by
// the escaper html/template adds for HTML text or a comment once the
// template has run: the one use of .Body whose output is the body itself.
func printsBody(p *parse.PipeNode) bool {
	if p == nil || len(p.Decl) > 0 || len(p.Cmds) == 0 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	switch a := p.Cmds[0].Args[0].(type) {
	case *parse.FieldNode:
		if len(a.Ident) != 1 || a.Ident[0] != "Body" {
			return false
		}
	case *parse.VariableNode:
		if len(a.Ident) != 2 || a.Ident[0] != "$" || a.Ident[1] != "Body" {
			return false
		}
	default:
		return false
	}
	for _, c := range p.Cmds[1:] {
		if len(c.Args) != 1 {
			return false
		}
		id, ok := c.Args[0].(*parse.IdentifierNode)
		if !ok || id.Ident != "_html_template_htmlescaper" && id.Ident != "_html_template_commentescaper" {
			return false
		}
	}
	return true
}

// readsOnlyBodyAndVars reports whether the template below n reads no data
// but .Body and .Vars: every field starts with .Vars, .Body is only
// printed (printsBody), and dot is never used whole (index . "x", {{.}},
// {{template "t" .}}, or a range or with that moves dot, all count as
// reading anything).
func readsOnlyBodyAndVars(n parse.Node) bool {
	ok := func(ident []string) bool {
		return len(ident) > 0 && ident[0] == "Vars"
	}
	switch n := n.(type) {
	case nil:
		return true
	case *parse.ListNode:
		if n == nil {
			return true
		}
		for _, c := range n.Nodes {
			if !readsOnlyBodyAndVars(c) {
				return false
			}
		}
		return true
	case *parse.ActionNode:
		return printsBody(n.Pipe) || readsOnlyBodyAndVars(n.Pipe)
	case *parse.PipeNode:
		if n == nil {
			return true
		}
		for _, c := range n.Cmds {
			if !readsOnlyBodyAndVars(c) {
				return false
			}
		}
		return true
	case *parse.CommandNode:
		for _, a := range n.Args {
			if !readsOnlyBodyAndVars(a) {
				return false
			}
		}
		return true
	case *parse.FieldNode:
		return ok(n.Ident)
	case *parse.VariableNode:
		// $ is the data: $.Vars is fine, $ alone is not.
		return n.Ident[0] != "$" || ok(n.Ident[1:])
	case *parse.DotNode:
		return false
	case *parse.ChainNode:
		return readsOnlyBodyAndVars(n.Node)
	case *parse.IfNode:
		return readsOnlyBodyAndVars(n.Pipe) && readsOnlyBodyAndVars(n.List) && readsOnlyBodyAndVars(n.ElseList)
	case *parse.RangeNode, *parse.WithNode:
		return false // they move dot, and what is read below is unknown
	case *parse.TemplateNode:
		return n.Pipe == nil || readsOnlyBodyAndVars(n.Pipe)
	case *parse.TextNode, *parse.CommentNode, *parse.IdentifierNode, *parse.StringNode,
		*parse.NumberNode, *parse.BoolNode, *parse.NilNode, *parse.BreakNode, *parse.ContinueNode:
		return true
	}
	return false // a node this walk does not know
}
