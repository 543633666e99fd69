package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/journal"
	"github.com/mailrun/mailrun/mailing"
	"github.com/mailrun/mailrun/sender"
)

// sendFlags are the flags of mailrun send.
type sendFlags struct {
	yes, retryFailed, resendUnknown, force, debug bool
	testAddr, only, journal, smtpURL              string
}

func (f *sendFlags) define(fs *flag.FlagSet) {
	fs.BoolVar(&f.yes, "yes", false, "send without asking for confirmation")
	fs.StringVar(&f.testAddr, "test", "", "send one message, subject prefixed [TEST], to `ADDR` only (not journaled)")
	fs.StringVar(&f.only, "only", "", "with --test: the recipient to render, by CSV `ROW|ADDR`")
	fs.StringVar(&f.journal, "journal", "", "journal `PATH` (default: <name>.journal next to the campaign)")
	fs.BoolVar(&f.retryFailed, "retry-failed", false, "send again to recipients that failed permanently")
	fs.BoolVar(&f.resendUnknown, "resend-unknown", false, "send again to recipients whose outcome is unknown (they may get it twice)")
	fs.BoolVar(&f.force, "force", false, "go on although the campaign files changed since the journal began")
	fs.StringVar(&f.smtpURL, "smtp", "", "relay `URL` overriding the smtp section, e.g. smtps://user@host:465")
	fs.BoolVar(&f.debug, "debug", false, "print the SMTP conversation to stderr (AUTH redacted)")
}

func cmdSend(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	var f sendFlags
	f.define(fs)
	pos, code, ok := parse(fs, args, 1, stdout, stderr)
	if !ok {
		return code
	}
	// The trace of every connection, run notices and progress share stderr.
	tty := isTerminal(stderr)
	stderr = &lockedWriter{w: stderr}
	c, ok := load(pos[0], stderr)
	if !ok {
		return exitUsage
	}
	pool, relay, ok := dialPlan(c, &f, stderr)
	if !ok {
		return exitUsage
	}
	defer pool.Close()
	if f.testAddr != "" {
		return testSend(ctx, c, pool, &f, stdout, stderr)
	}
	rows, err := mailing.Count(ctx, c)
	if code := interrupted(ctx, err, stderr); code != 0 {
		return code
	}
	if err != nil {
		fmt.Fprintln(stderr, "mailrun send:", errText(err))
		return exitUsage
	}
	journalPath := f.journal
	if journalPath == "" {
		journalPath = mailing.JournalPath(c)
	}
	fmt.Fprintf(stdout, "send: %q: %d recipient rows (%s, mode %s) via %s; journal %s\n",
		c.Name, rows, c.Recipients.File, c.Mode, relay, journalPath)
	if !f.yes {
		if code := confirm(ctx, stdin, stdout, stderr); code != exitOK {
			if code == exitCancelled {
				return exitOK // the user's answer, not a failure
			}
			return code
		}
	}
	return sendRun(ctx, c, pool, &f, journalPath, rows, stdout, stderr, tty)
}

// dialPlan applies --smtp and --debug, builds the pool and says in a few
// words where the mail goes.
func dialPlan(c *campaign.Campaign, f *sendFlags, stderr io.Writer) (*sender.Pool, string, bool) {
	if f.smtpURL != "" {
		if err := mailing.OverrideSMTP(c, f.smtpURL); err != nil {
			fmt.Fprintln(stderr, "mailrun send: --smtp:", errText(err))
			return nil, "", false
		}
	}
	var trace io.Writer
	if f.debug {
		trace = stderr
	}
	client, pc, err := mailing.Relay(c, trace)
	if err != nil {
		fmt.Fprint(stderr, "mailrun send: ", errText(err))
		if errors.Is(err, mailing.ErrNoRelay) {
			fmt.Fprint(stderr, " (add an smtp section or use --smtp URL)")
		}
		fmt.Fprintln(stderr)
		return nil, "", false
	}
	rate := "no limit"
	if pc.Rate > 0 {
		rate = c.Send.Rate
	}
	relay := fmt.Sprintf("%s, rate %s, %d connections", client, rate, max(pc.Concurrency, 1))
	return sender.NewPool(client, pc), relay, true
}

// exitCancelled is confirm's answer for a "no": nothing sent, as asked.
const exitCancelled = -1

// confirm asks on a terminal; without one it refuses, so that a script
// never sends by accident.
func confirm(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) int {
	if !isTerminal(stdin) {
		fmt.Fprintln(stderr, "mailrun send: refusing to send without confirmation: stdin is not a terminal; add --yes")
		return exitUsage
	}
	fmt.Fprint(stdout, "Send now? [y/N] ")
	answer := make(chan string, 1)
	go func() { // a Ctrl-C must not wait for Enter
		line, _ := bufio.NewReader(stdin).ReadString('\n')
		answer <- line
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout, "\nsend: interrupted, nothing sent")
		return exitInterrupted
	case line := <-answer:
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			fmt.Fprintln(stdout, "send: cancelled, nothing sent")
			return exitCancelled
		}
	}
	return exitOK
}

// testSend is send --test.
func testSend(ctx context.Context, c *campaign.Campaign, pool *sender.Pool, f *sendFlags, stdout, stderr io.Writer) int {
	rec, err := mailing.TestSend(ctx, c, pool, f.testAddr, f.only)
	if err != nil {
		switch {
		case errors.Is(err, mailing.ErrOnlyGroup):
			err = fmt.Errorf("--only: %w", err)
		case errors.Is(err, mailing.ErrNoRecipient) && f.only != "":
			err = fmt.Errorf("--only: %w", err)
		case errors.Is(err, mailing.ErrTestAddress):
			err = fmt.Errorf("--test: %w", err)
		}
		fmt.Fprintln(stderr, "mailrun send:", errText(err))
		if errors.Is(err, context.Canceled) {
			return exitInterrupted
		}
		return exitFailed
	}
	what := fmt.Sprintf("row %d, %s", rec.Row, rec.Email)
	if c.Mode == "group" {
		what = "the group message"
	}
	fmt.Fprintf(stdout, "send: test message (%s) sent to <%s>\n", what, f.testAddr)
	return exitOK
}

// sendRun is the send itself, with its progress, its interrupts and its
// exit code.
func sendRun(ctx context.Context, c *campaign.Campaign, pool *sender.Pool, f *sendFlags, journalPath string, rows int, stdout, stderr io.Writer, tty bool) int {
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go secondInterrupt(ctx, hard, cancelHard, sig, stderr)

	prog := newProgress(rows, stderr, tty)
	sum, err := mailing.Send(ctx, c, pool, mailing.SendOptions{
		Journal:       journalPath,
		RetryFailed:   f.retryFailed,
		ResendUnknown: f.resendUnknown,
		Force:         f.force,
		Hard:          hard,
		Out:           prog.logWriter(),
		Progress:      prog.add,
	})
	prog.finish()
	noteEarlier(stderr, sum)
	fmt.Fprintln(stdout, sum)
	switch {
	case err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()):
		fmt.Fprintln(stderr, "mailrun send: interrupted; the journal is consistent: run the same command again to go on")
		return exitInterrupted
	case errors.Is(err, mailing.ErrChanged):
		fmt.Fprintf(stderr, "mailrun send: %s; check them and run again with --force\n", errText(err))
		return exitUsage
	case err != nil:
		fmt.Fprintln(stderr, "mailrun send:", errText(err))
		var (
			ae *mailing.AbortError
			se *mailing.SetupError
		)
		if errors.As(err, &ae) || errors.As(err, &se) || errors.Is(err, journal.ErrLocked) {
			return exitUsage // the campaign or the relay needs fixing
		}
		return exitFailed
	case sum.Failed+sum.Deferred+sum.Unknown+sum.Invalid > 0:
		return exitFailed
	}
	return exitOK
}

// noteEarlier tells what the journal made the run skip, and the flag that
// changes it.
func noteEarlier(w io.Writer, sum *mailing.SendSummary) {
	if len(sum.Earlier) == 0 {
		return
	}
	var parts []string
	for _, st := range []journal.Status{journal.Sent, journal.Bounced, journal.Failed, journal.Unknown} {
		n := sum.Earlier[st]
		if n == 0 {
			continue
		}
		s := fmt.Sprintf("%d %s", n, st)
		switch st {
		case journal.Failed:
			s += " (--retry-failed sends them again)"
		case journal.Unknown:
			s += " (--resend-unknown sends them again; they may get it twice)"
		}
		parts = append(parts, s)
	}
	fmt.Fprintf(w, "journal %s: skipped recipients settled by an earlier run: %s\n", sum.Journal, strings.Join(parts, ", "))
}
