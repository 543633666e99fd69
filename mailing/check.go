package mailing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/render"
)

// Report counts what Check or Preview found: the caller tells a campaign
// that cannot be used (CampaignErrors) from one with bad rows (Errors).
type Report struct {
	// Recipients is the number of data rows read from the CSV.
	Recipients int
	// OK is the number of recipients whose message rendered (and, for
	// Preview, was written); in group mode, the valid addresses.
	OK int
	// Failed is the number of rows skipped because of an error.
	Failed int
	// Duplicates is the number of rows skipped as duplicates.
	Duplicates int
	// Suppressed is the number of rows skipped by the suppress lists.
	Suppressed int
	// Errors and Warnings count the problems printed, the campaign file's
	// included.
	Errors, Warnings int
	// CampaignErrors counts the errors that are not one row's: the campaign
	// file, a template, a suppress file, the list's header. Any of them
	// makes the campaign unusable as it is (exit code 2), where row errors
	// only skip their rows (exit code 1).
	CampaignErrors int
	// Written is the number of .eml files Preview wrote.
	Written int
	// Elapsed is the time the run took.
	Elapsed time.Duration
}

// Check validates the whole campaign without sending: the campaign file's
// problems (found by campaign.Load), the relay settings, the suppress
// files, the CSV, every address, duplicates, and every template, image and
// attachment for every row, by rendering each message and discarding it
// (group mode: one RenderGroup for all valid addresses).
//
// It prints every problem to out as "file:line: field: message", config
// problems first, then the CSV's in row order, each suppressed row as
// "file:row: email: skipped: suppressed", then a summary line such as
// "check: 5 recipients, 4 ok, 1 error, 1 warning, 0 suppressed". Problems are
// counted in the Report, not returned: the error is non-nil only when Check
// could not finish (unreadable CSV, write error, or ctx.Err() when cancelled).
func Check(ctx context.Context, c *campaign.Campaign, out io.Writer) (*Report, error) {
	start := time.Now()
	rep := &Report{}
	err := walk(ctx, c, &tally{out: out, rep: rep}, walkFuncs{})
	rep.Elapsed = time.Since(start)
	if err != nil {
		return rep, err
	}
	_, err = fmt.Fprintf(out, "check: %s, %d ok, %s, %s, %d suppressed\n",
		plural(rep.Recipients, "recipient"), rep.OK, plural(rep.Errors, "error"), plural(rep.Warnings, "warning"), rep.Suppressed)
	return rep, err
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// tally prints problems as check and preview do and counts them.
type tally struct {
	out  io.Writer
	rep  *Report
	werr error // the first write error to out
	// repeats groups the rows that have the same problem as an earlier
	// row: a typo in a template fails every row alike, and 4,000 lines of
	// it would hide everything else.
	repeats repeats
}

// emit prints a problem of the campaign as a whole.
func (t *tally) emit(p campaign.Problem) {
	if !p.Warning {
		t.rep.CampaignErrors++
	}
	t.count(p)
	t.println(p.String())
}

// emitRow prints a problem of one row, unless an earlier row had the same
// one: then the row is only noted, for the summary of repeats.
func (t *tally) emitRow(p campaign.Problem) {
	t.count(p)
	if t.repeats.seen(p) {
		return
	}
	t.println(p.String())
}

func (t *tally) count(p campaign.Problem) {
	if p.Warning {
		t.rep.Warnings++
	} else {
		t.rep.Errors++
	}
}

// printRepeats prints one line per problem that repeated, with its rows.
func (t *tally) printRepeats() {
	for _, g := range t.repeats.list {
		if g.n > 1 {
			t.println(g.String())
		}
	}
}

func (t *tally) println(s string) {
	if t.werr == nil {
		_, t.werr = fmt.Fprintln(t.out, s)
	}
}

// walkFuncs are what preview adds to check's walk; the zero value checks.
type walkFuncs struct {
	// sink runs on the rendering goroutine (see pipeline.sink).
	sink func(*row) error
	// ok takes each rendered message in CSV order.
	ok func(*row) error
	// group takes the group message.
	group func(*render.Message) error
}

// walk is check and preview: it prints the config problems (the relay's
// included), opens the renderer, the suppress lists and the list, runs the
// pipeline and prints each row's problems in CSV order, then renders the
// group message in group mode.
func walk(ctx context.Context, c *campaign.Campaign, t *tally, f walkFuncs) error {
	ps := append(append(c.Problems(), relayProblems(c)...), bounceProblems(c)...)
	slices.SortStableFunc(ps, func(a, b campaign.Problem) int { return cmp.Compare(a.Line, b.Line) })
	for _, p := range ps {
		t.emit(p)
	}
	// check throws its messages away: signing them would only cost time
	// (a DKIM key is checked when the campaign loads).
	var tweak func(*render.Config)
	if f.ok == nil {
		tweak = func(rc *render.Config) { rc.DKIM = nil }
	}
	rd, err := newRenderer(c, tweak)
	if err != nil {
		t.emit(configProblem(c, err))
	} else {
		defer rd.Close()
		// What mail clients drop, once per template: on the body or
		// layout key, the template's own file and line in the message.
		for _, w := range rd.Warnings() {
			p := c.Problem(renderKeys[w.Field], w.String())
			p.Warning = true
			t.emit(p)
		}
	}
	sup, err := campaign.LoadSuppressions(c)
	if err != nil {
		t.emit(c.Problem("suppress", err.Error()))
	}
	recs, err := campaign.OpenRecipients(c)
	if err != nil {
		var ps campaign.Problems
		if !errors.As(err, &ps) {
			return err
		}
		for _, p := range ps {
			t.emit(p)
		}
		return t.werr
	}
	defer recs.Close()

	w := &walker{c: c, t: t, f: f, file: recs.File(), email: recs.EmailColumn(), hasRenderer: rd != nil}
	p := &pipeline{recs: recs, sup: sup}
	if c.Mode != "group" {
		p.rd, p.sink = rd, f.sink
	}
	if err := p.run(ctx, w.row); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t.printRepeats()
	if c.Mode == "group" && rd != nil && !w.stopped {
		if err := w.group(rd); err != nil && !errors.Is(err, errStop) {
			return err
		}
	}
	return t.werr
}

// bigMessage is the size over which check warns: a common relay limit.
const bigMessage = 10 << 20

// walker is the consumer of check's and preview's pipeline.
type walker struct {
	c           *campaign.Campaign
	t           *tally
	f           walkFuncs
	file        string
	email       string // the address column, as the header names it
	hasRenderer bool
	groupTo     []string
	stopped     bool // ok stopped the walk (preview's limit)
}

func (w *walker) row(r *row) error {
	rep := w.t.rep
	rep.Recipients++
	switch {
	case r.problems != nil:
		for _, p := range r.problems {
			w.t.emitRow(p)
		}
		if r.problems.HasErrors() {
			rep.Failed++
		} else {
			rep.Duplicates++
		}
	case r.suppressed:
		rep.Suppressed++
		w.t.println(fmt.Sprintf("%s:%d: %s: skipped: suppressed", w.file, r.rec.Row, w.email))
	case !w.hasRenderer:
		// The renderer could not be built (already printed).
	case !r.rendered:
		w.groupTo = append(w.groupTo, r.rec.Email)
		rep.OK++
	case r.err != nil:
		for _, p := range renderProblems(w.file, r.rec.Row, r.err) {
			w.t.emitRow(p)
		}
		rep.Failed++
	default:
		if r.sinkErr != nil {
			return r.sinkErr
		}
		if r.msg != nil && len(r.msg.Data) > bigMessage {
			// One wording for every such row, so that they group.
			w.t.emitRow(campaign.Problem{File: w.file, Line: r.rec.Row, Field: "size", Warning: true,
				Message: "message over 10 MB: many relays refuse messages this large (their SIZE, RFC 1870)"})
		}
		var err error
		if w.f.ok != nil {
			err = w.f.ok(r)
		}
		w.stopped = errors.Is(err, errStop)
		if err == nil || w.stopped {
			rep.OK++ // the last message under preview's limit counts too
		}
		return err
	}
	return nil
}

// group renders the group message for every valid address.
func (w *walker) group(rd *render.Renderer) error {
	if len(w.groupTo) == 0 {
		w.t.emit(campaign.Problem{File: w.file, Message: "no valid recipient for the group message"})
		return nil
	}
	msg, err := rd.RenderGroup(w.groupTo)
	if err != nil {
		w.t.emit(configProblem(w.c, err))
		return nil
	}
	if w.f.group != nil {
		return w.f.group(msg)
	}
	return nil
}

// renderProblems turns a render error into Problems on the CSV row: render
// reports every part of a row that failed (an errors.Join of FieldErrors),
// and each is a problem of its own, so that one check shows them all.
func renderProblems(file string, row int, err error) []campaign.Problem {
	var ps []campaign.Problem
	for _, e := range leaves(err) {
		var fe *render.FieldError
		if errors.As(e, &fe) {
			ps = append(ps, campaign.Problem{File: file, Line: row, Field: fe.Field, Message: fe.Err.Error()})
		} else {
			ps = append(ps, campaign.Problem{File: file, Line: row, Message: e.Error()})
		}
	}
	return ps
}

// leaves flattens joined errors (errors.Join) into their parts.
func leaves(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, leaves(e)...)
	}
	return out
}

// renderKeys maps render's field names to the campaign keys they come from.
var renderKeys = map[string]string{"subject": "subject", "name": "recipients.name", "body": "body",
	"text": "body.text", "layout": "body.layout", "attachment": "attachments", "unsubscribe": "unsubscribe",
	"address": "from", "dkim": "dkim"}

// configProblem places an error of render.New (a bad template, say) on the
// campaign key it comes from. render.New words its errors "field: cause";
// a *render.FieldError is used as such, otherwise the known field prefix is
// read (presentation only: an unknown prefix just prints without a line).
func configProblem(c *campaign.Campaign, err error) campaign.Problem {
	field, msg := "", err.Error()
	var fe *render.FieldError
	if errors.As(err, &fe) {
		field, msg = fe.Field, fe.Err.Error()
	} else if f, rest, ok := strings.Cut(msg, ": "); ok {
		field, msg = f, rest
	}
	key, ok := renderKeys[field]
	if first, _, cut := strings.Cut(field, " "); !ok && cut {
		key, ok = renderKeys[first] // "attachment NAME: ..."
		if ok {
			msg = strings.TrimPrefix(err.Error(), first+" ")
		}
	}
	if h, isHeader := strings.CutPrefix(field, "header "); isHeader {
		key, ok = "headers."+h, true
	}
	if !ok {
		return c.Problem("", err.Error())
	}
	return c.Problem(key, msg)
}
