package mailing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mailrun/mailrun/bounce"
	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/journal"
	"github.com/mailrun/mailrun/mailbox"
)

// ErrNoBounceMailbox is returned by Bounces when the campaign has no
// bounces section.
var ErrNoBounceMailbox = errors.New("no bounce mailbox configured")

// MailboxConfig maps the bounces section to the mailbox package, without
// the password; the mailbox's defaults (port, security, folder) are
// mailbox's to fill in.
func MailboxConfig(c *campaign.Campaign) mailbox.Config {
	b := c.Bounces
	return mailbox.Config{
		Protocol: b.Protocol, Host: b.Host, Port: b.Port, Security: b.Security,
		CAFile: c.File(b.CAFile), Username: b.Username, Mailbox: b.Mailbox,
	}
}

// bounceProblems checks the bounces section against the mailbox's own
// rules (mailbox.Check), so that check passes what bounces accepts.
func bounceProblems(c *campaign.Campaign) []campaign.Problem {
	if c.Bounces.Host == "" {
		return nil
	}
	err := mailbox.Check(MailboxConfig(c))
	var ce *mailbox.ConfigError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		return []campaign.Problem{c.Problem("bounces."+ce.Field, ce.Message)}
	}
	return []campaign.Problem{c.Problem("bounces", err.Error())}
}

// BouncesOptions shapes one bounce run.
type BouncesOptions struct {
	// Journal is the campaign's journal; default JournalPath.
	Journal string
	// DryRun reads and classifies but changes nothing.
	DryRun bool
	// Notes receives what the run did to the journal; nil discards it.
	Notes io.Writer
}

// Bounces reads the bounce mailbox of c, appends hard bounces to
// bounces.write_to and marks them bounced in the journal (package bounce
// does the reading and classifying). It returns ErrNoBounceMailbox without
// a bounces section, and the summary of what it read along with any
// error. A campaign never sent has no journal: nothing is marked then, and
// the notes say so.
func Bounces(ctx context.Context, c *campaign.Campaign, opts BouncesOptions) (*bounce.Summary, error) {
	if c.Bounces.Host == "" {
		return nil, &settingError{c.Problem("bounces.host", ErrNoBounceMailbox.Error()), ErrNoBounceMailbox}
	}
	if opts.Journal == "" {
		opts.Journal = JournalPath(c)
	}
	if opts.Notes == nil {
		opts.Notes = io.Discard
	}
	cfg := MailboxConfig(c)
	pw, err := c.Password("bounces")
	if err != nil {
		return nil, &SetupError{err}
	}
	cfg.Password = pw
	mb, err := mailbox.Open(ctx, cfg)
	var ce *mailbox.ConfigError
	if errors.As(err, &ce) {
		err = &settingError{c.Problem("bounces."+ce.Field, ce.Message), err}
	}
	if err != nil {
		return nil, &SetupError{err}
	}
	sum, err := bounce.Process(ctx, mb, bounce.Options{
		After:   c.Bounces.After,
		WriteTo: c.File(c.Bounces.WriteTo),
		DryRun:  opts.DryRun,
		Mark:    marker(opts.Journal, c.Name, opts.Notes),
	})
	// For POP3, Close (QUIT) is what commits the deletions.
	if cerr := mb.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close mailbox: %w", cerr)
	}
	return sum, err
}

// marker marks the hard-bounced recipients in the campaign's journal, in
// one journal run, and notes how many it marked.
func marker(path, name string, notes io.Writer) func([]bounce.Found) error {
	return func(found []bounce.Found) error {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(notes, "bounces: no journal at %s: %d hard bounces not marked in it\n", path, len(found))
			return nil
		}
		bs := make([]journal.Bounce, len(found))
		for i, f := range found {
			bs[i] = journal.Bounce{Email: f.Addr, MessageID: f.MessageID,
				Reply: journal.Reply{Enhanced: f.Status, Text: f.Diagnostic}}
		}
		marked, err := journal.MarkBounced(path, journal.Header{Campaign: name, Command: "bounces"}, campaign.AddrKey, bs)
		if err != nil {
			return err
		}
		fmt.Fprintf(notes, "bounces: %d recipients marked bounced in %s\n", len(marked), path)
		return nil
	}
}
