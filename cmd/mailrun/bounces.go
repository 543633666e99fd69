package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/mailrun/mailrun/bounce"
	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/journal"
	"github.com/mailrun/mailrun/mailbox"
	"github.com/mailrun/mailrun/mailing"
)

func cmdBounces(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bounces", flag.ContinueOnError)
	dryRun := fs.Bool("dry-run", false, "read and classify, change nothing")
	jpath := fs.String("journal", "", "journal file (default: <name>.journal next to the campaign)")
	pos, ok := parse(fs, args, 1, stderr)
	if !ok {
		return exitUsage
	}
	c, ok := load(pos[0], stderr)
	if !ok {
		return exitUsage
	}
	b := c.Bounces
	if b.Host == "" {
		fmt.Fprintf(stderr, "mailrun bounces: %s: bounces.host: no bounce mailbox configured\n", c.Path())
		return exitUsage
	}
	pw, err := c.Password("bounces")
	if err != nil {
		fmt.Fprintln(stderr, "mailrun bounces:", err)
		return exitUsage
	}
	journalPath := *jpath
	if journalPath == "" {
		journalPath = mailing.JournalPath(c)
	}
	mb, err := mailbox.Open(ctx, mailbox.Config{
		Protocol: b.Protocol, Host: b.Host, Port: b.Port, Security: b.Security,
		CAFile: c.File(b.CAFile), Username: b.Username, Password: pw, Mailbox: b.Mailbox,
	})
	if err != nil {
		fmt.Fprintln(stderr, "mailrun bounces:", err)
		return exitUsage
	}
	sum, err := bounce.Process(ctx, mb, bounce.Options{
		After:   b.After,
		WriteTo: c.File(b.WriteTo),
		DryRun:  *dryRun,
		Mark:    marker(journalPath, c.Name, stderr),
	})
	// For POP3, Close (QUIT) is what commits the deletions.
	if cerr := mb.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close mailbox: %w", cerr)
	}
	if sum != nil {
		sum.Print(stdout)
	}
	if code := interrupted(ctx, err, stderr); code != 0 {
		return code
	}
	if err != nil {
		fmt.Fprintln(stderr, "mailrun bounces:", err)
		return exitFailed
	}
	if len(sum.Errors()) > 0 {
		return exitFailed
	}
	return exitOK
}

// marker marks the hard-bounced recipients in the campaign's journal, in
// one journal run, and notes on notes how many it marked. A campaign never
// sent has no journal: there is nothing to mark then, and the note says so.
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
