package mailing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/gallery"
	"github.com/mailrun/mailrun/render"
	"github.com/mailrun/mailrun/sender"
)

// Rendered is one recipient's message as mailrun serve shows it: the
// bytes preview would write, or the problems that stand in their place.
type Rendered struct {
	// Row is the CSV row (0 for the group message) and Email the address
	// as the list has it.
	Row   int
	Email string
	// Name is the file name preview gives the message.
	Name string
	// Data is the message; nil when problems kept it from rendering.
	Data []byte
	// Problems are what check prints for this message: the campaign
	// file's errors, a template that does not parse (with its file and
	// line), the row's problems in the list, a suppressed address, and
	// the row's render errors (with the template's file and line).
	Problems []campaign.Problem
	// Prev and Next are the rows before and after Row in the list; 0
	// when there is none (and always in group mode).
	Prev, Next int
}

// RenderOne renders, without sending or writing anything, the message of
// the row pick names: a CSV row number or an address (compared as
// campaign.AddrKey does), or "" for the first row; in group mode, the group
// message whatever pick says. It goes through the pipeline of check and
// preview, rendering that row only, so its problems are theirs. A row with
// problems is returned with them and no Data.
//
// The error is ErrNoRecipient when no row matches pick, or an error that
// stopped the list being read (an unreadable file, ctx.Err()).
func RenderOne(ctx context.Context, c *campaign.Campaign, pick string) (*Rendered, error) {
	out := &Rendered{}
	for _, p := range c.Problems() {
		if !p.Warning {
			out.Problems = append(out.Problems, p)
		}
	}
	rd, err := newRenderer(c, nil)
	if err != nil {
		out.Problems = append(out.Problems, configProblem(c, err))
		rd = nil
	} else {
		defer rd.Close()
	}
	sup, err := campaign.LoadSuppressions(c)
	if err != nil {
		out.Problems = append(out.Problems, c.Problem("suppress", err.Error()))
	}
	recs, err := campaign.OpenRecipients(c)
	if err != nil {
		var ps campaign.Problems
		if !errors.As(err, &ps) {
			return nil, err
		}
		out.Problems = append(out.Problems, ps...)
		return out, nil
	}
	defer recs.Close()
	if c.Mode == "group" {
		return renderGroup(ctx, c, out, recs, sup, rd)
	}

	match := func(rec render.Recipient) bool {
		return pick == "" || pick == strconv.Itoa(rec.Row) || campaign.AddrKey(pick) == campaign.AddrKey(rec.Email)
	}
	// The producer renders the first valid row that matches; the consumer
	// takes the first row that matches, valid or not: when that one has
	// problems, the rendered row is not used. picked is the producer's.
	picked := false
	p := &pipeline{recs: recs, sup: sup, rd: rd, ahead: 1, hold: func(rec render.Recipient) bool {
		pick := !picked && match(rec)
		picked = picked || pick
		return !pick
	}}
	found, prev := false, 0
	err = p.run(ctx, func(r *row) error {
		if found {
			out.Next = r.rec.Row
			return errStop
		}
		if !match(r.rec) {
			prev = r.rec.Row
			return nil
		}
		found = true
		out.Row, out.Email, out.Prev, out.Name = r.rec.Row, r.rec.Email, prev, emlName(r.rec.Row, r.rec.Email)
		switch {
		case r.problems != nil:
			out.Problems = append(out.Problems, r.problems...)
		case r.suppressed:
			// check's line for it, as a Problem.
			out.Problems = append(out.Problems, campaign.Problem{File: recs.File(), Line: r.rec.Row,
				Field: recs.EmailColumn(), Message: "skipped: suppressed"})
		case r.err != nil:
			out.Problems = append(out.Problems, renderProblems(recs.File(), r.rec.Row, r.err)...)
		case r.msg != nil:
			out.Data = r.msg.Data
		}
		return nil
	})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%w with row or address %q in %s", ErrNoRecipient, pick, recs.File())
	}
	return out, nil
}

// renderGroup is RenderOne's group mode: the group message for every valid
// address of the list, as check renders it.
func renderGroup(ctx context.Context, c *campaign.Campaign, out *Rendered, recs *campaign.Recipients, sup *campaign.Suppressions, rd *render.Renderer) (*Rendered, error) {
	out.Name = "group.eml"
	var to []string
	p := &pipeline{recs: recs, sup: sup}
	err := p.run(ctx, func(r *row) error {
		if r.problems == nil && !r.suppressed {
			to = append(to, r.rec.Email)
		}
		return nil
	})
	if err == nil {
		err = ctx.Err()
	}
	switch {
	case err != nil:
		return nil, err
	case rd == nil:
	case len(to) == 0:
		out.Problems = append(out.Problems, campaign.Problem{File: recs.File(), Message: "no valid recipient for the group message"})
	default:
		msg, err := rd.RenderGroup(to)
		if err != nil {
			out.Problems = append(out.Problems, configProblem(c, err))
		} else {
			out.Data = msg.Data
		}
	}
	return out, nil
}

// Index walks c as Preview does, but writes nothing: every row's message
// is rendered and handed to g (a gallery.Collect) for its index line, and
// every line check would print goes with its row or, when it belongs to no
// row, to the index's notes. The Report counts as Check's does. The error
// is non-nil when the walk could not finish (unreadable list, a message
// that cannot be parsed, ctx.Err()).
func Index(ctx context.Context, c *campaign.Campaign, g *gallery.Gallery) (*Report, error) {
	rep := &Report{}
	ix := &galleryIndex{g: g, prefix: c.File(c.Recipients.File) + ":", out: io.Discard, rows: map[int][]string{}}
	page := func(row int, name, email string, msg *render.Message) error {
		e, err := g.Page(row, name, msg.Data)
		if err != nil {
			return err
		}
		if email != "" {
			e.Address = email
		}
		return ix.add(e)
	}
	f := walkFuncs{
		ok: func(r *row) error { return page(r.rec.Row, emlName(r.rec.Row, r.rec.Email), r.rec.Email, r.msg) },
		group: func(msg *render.Message) error {
			return page(0, "group.eml", "", msg)
		},
	}
	err := walk(ctx, c, &tally{out: ix, rep: rep}, f)
	if err == nil {
		err = ix.close()
	}
	return rep, err
}

// IsLoopback reports whether host names this machine (sender.IsLoopback,
// the one rule): mailrun serve listens on such an address unless told
// otherwise, and cannot import the wire itself.
func IsLoopback(host string) bool {
	return sender.IsLoopback(host)
}
