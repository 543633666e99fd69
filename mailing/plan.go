package mailing

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"time"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/journal"
	"github.com/mailrun/mailrun/render"
)

// Plan is what a send would do, worked out before it asks: the list as
// Send will stream it, the journal as an earlier run left it.
type Plan struct {
	// Rows is the number of data rows in the list.
	Rows int
	// ToSend is the number of recipients this run would send to (at most
	// SendOptions.Limit).
	ToSend int
	// Earlier counts the recipients an earlier run settled, by status;
	// they are not sent again (see SendOptions).
	Earlier map[journal.Status]int
	// Suppressed, Duplicates and Invalid count the rows skipped: named by a
	// suppress list, the same address as an earlier row, or a row with an
	// error (printed by NewPlan).
	Suppressed, Duplicates, Invalid int
	// Journal is the journal file; Began is when it began, zero for none.
	Journal string
	Began   time.Time
	// InUse reports that another run holds the journal now.
	InUse bool
	// Changed is a *ChangedError when the campaign files changed since
	// the journal began, nil otherwise.
	Changed error
}

// NewPlan streams the list and reads the journal without its lock, as
// Send would with opts, and prints the rows' problems to out as check
// prints them (a problem that repeats once, then its count and rows).
// Templates are not rendered: a row that fails to render is found by the
// send, which skips it, or by check beforehand. NewPlan changes nothing.
func NewPlan(ctx context.Context, c *campaign.Campaign, opts SendOptions, out io.Writer) (*Plan, error) {
	pl := &Plan{Journal: opts.Journal, Earlier: map[journal.Status]int{}}
	if pl.Journal == "" {
		pl.Journal = JournalPath(c)
	}
	snap, err := journal.Peek(pl.Journal, campaign.AddrKey)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		snap = nil
	case err != nil:
		return nil, err
	}
	if snap != nil {
		pl.Began, pl.InUse = snap.Began.Time, snap.InUse
		fp, files, err := fingerprints(c)
		if err != nil {
			return nil, err
		}
		if snap.Began.Fingerprint != fp {
			pl.Changed = &ChangedError{Journal: pl.Journal, Began: snap.Began.Time, Files: changedFiles(snap.Began, files)}
		}
	}
	sup, err := campaign.LoadSuppressions(c)
	if err != nil {
		return nil, err
	}
	recs, err := campaign.OpenRecipients(c)
	if err != nil {
		return nil, err
	}
	defer recs.Close()
	again := (&sendRun{opts: opts}).again
	p := &pipeline{recs: recs, sup: sup}
	if snap != nil {
		p.hold = func(rec render.Recipient) bool {
			st, ok := snap.Status(rec.Email)
			return ok && !again(st)
		}
	}
	t := &tally{out: out, rep: &Report{}}
	err = p.run(ctx, func(rw *row) error {
		pl.Rows++
		switch {
		case rw.problems != nil:
			for _, pr := range rw.problems {
				t.emitRow(pr)
			}
			if rw.problems.HasErrors() {
				pl.Invalid++
			} else {
				pl.Duplicates++
			}
		case rw.held:
			st, _ := snap.Status(rw.rec.Email)
			pl.Earlier[st]++
		case rw.suppressed:
			pl.Suppressed++
		case opts.Limit <= 0 || pl.ToSend < opts.Limit:
			pl.ToSend++
		}
		return nil
	})
	if err == nil {
		err = ctx.Err()
	}
	t.printRepeats()
	if err == nil {
		err = t.werr
	}
	return pl, err
}
