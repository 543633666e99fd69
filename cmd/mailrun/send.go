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
	"time"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/journal"
	"github.com/mailrun/mailrun/mailing"
	"github.com/mailrun/mailrun/sender"
)

// sendFlags are the flags of mailrun send.
type sendFlags struct {
	yes, retryFailed, resendUnknown, force, debug, skipInvalid bool
	testAddr, only, journal, smtpURL, cluster                  string
	limit                                                      int
}

// options are the send options the flags ask for.
func (f *sendFlags) options() mailing.SendOptions {
	return mailing.SendOptions{Journal: f.journal, RetryFailed: f.retryFailed,
		ResendUnknown: f.resendUnknown, Force: f.force, Limit: f.limit}
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
	fs.BoolVar(&f.skipInvalid, "skip-invalid", false, "send to the valid rows although some rows have problems (they are skipped)")
	fs.IntVar(&f.limit, "limit", 0, "send to at most `N` new recipients this run, in list order; the next run goes on")
	fs.StringVar(&f.cluster, "cluster", "", "coordinate the workers of the NATS cluster at `URL` instead of sending from here")
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
	if f.cluster != "" {
		return clusterSend(ctx, c, &f, stdin, stdout, stderr, tty)
	}
	pool, relay, ok := dialPlan(c, &f, stderr)
	if !ok {
		return exitUsage
	}
	defer pool.Close()
	if f.testAddr != "" {
		return testSend(ctx, c, pool, &f, stdout, stderr)
	}
	pl, opts, code, ok := planAndAsk(ctx, c, &f, relay, stdin, stdout, stderr)
	if !ok {
		return code
	}
	return sendRun(ctx, pl.ToSend, stdout, stderr, tty, opts, func(ctx context.Context, opts mailing.SendOptions) (*mailing.SendSummary, error) {
		return mailing.Send(ctx, c, pool, opts)
	})
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

// planAndAsk works out the plan, prints it with relay (where the mail
// goes), refuses what refuse refuses and asks, as send does with and
// without --cluster. ok false ends the command with code; a "no" is
// exitOK, the user's answer and not a failure.
func planAndAsk(ctx context.Context, c *campaign.Campaign, f *sendFlags, relay string, stdin io.Reader, stdout, stderr io.Writer) (*mailing.Plan, mailing.SendOptions, int, bool) {
	opts := f.options()
	pl, err := mailing.NewPlan(ctx, c, opts, stderr)
	if code := interrupted(ctx, err, stderr); code != 0 {
		return nil, opts, code, false
	}
	if err != nil {
		fmt.Fprintln(stderr, "mailrun send:", errText(err))
		return nil, opts, exitUsage, false
	}
	printPlan(stdout, c, pl, relay)
	if code, ok := refuse(pl, f, stderr); !ok {
		return nil, opts, code, false
	}
	if !f.yes {
		if code := confirm(ctx, stdin, stdout, stderr); code != exitOK {
			if code == exitCancelled {
				code = exitOK
			}
			return nil, opts, code, false
		}
	}
	opts.Journal = pl.Journal
	return pl, opts, exitOK, true
}

// exitCancelled is confirm's answer for a "no": nothing sent, as asked.
const exitCancelled = -1

// printPlan says what the send will do before it asks.
func printPlan(w io.Writer, c *campaign.Campaign, pl *mailing.Plan, relay string) {
	fmt.Fprintf(w, "send: %q (%s, mode %s) via %s\n", c.Name, c.File(c.Recipients.File), c.Mode, relay)
	fmt.Fprintf(w, "send: %d rows: %d to send", pl.Rows, pl.ToSend)
	if n := sumEarlier(pl.Earlier); n > 0 {
		fmt.Fprintf(w, ", %d settled by earlier runs (resuming)", n)
	}
	for _, x := range []struct {
		n    int
		what string
	}{{pl.Suppressed, "suppressed"}, {pl.Duplicates, "duplicates"}, {pl.Invalid, "with problems"}} {
		if x.n > 0 {
			fmt.Fprintf(w, ", %d %s", x.n, x.what)
		}
	}
	fmt.Fprintf(w, "; journal %s", pl.Journal)
	if !pl.Began.IsZero() {
		fmt.Fprintf(w, " (began %s)", pl.Began.Local().Format(time.DateTime))
	}
	fmt.Fprintln(w)
}

func sumEarlier(m map[journal.Status]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// refuse stops a send before the question: a journal another run holds,
// campaign files changed since the journal began (without --force), rows
// with problems (without --skip-invalid).
func refuse(pl *mailing.Plan, f *sendFlags, stderr io.Writer) (int, bool) {
	switch {
	case pl.InUse:
		fmt.Fprintf(stderr, "mailrun send: journal %s is in use by another run; wait for it, or stop it first\n", pl.Journal)
		return exitUsage, false
	case pl.Changed != nil && !f.force:
		fmt.Fprintf(stderr, "mailrun send: %s; check them and run again with --force\n", errText(pl.Changed))
		return exitUsage, false
	case pl.Invalid > 0 && !f.skipInvalid:
		fmt.Fprintf(stderr, "mailrun send: %d rows have problems (above), nothing sent: fix them, or add --skip-invalid to send to the others\n", pl.Invalid)
		return exitFailed, false
	}
	return exitOK, true
}

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

// sendRun is the send itself (send: mailing.Send, or mailing.Coordinate
// with --cluster), with its progress, its interrupts and its exit code.
func sendRun(ctx context.Context, total int, stdout, stderr io.Writer, tty bool, opts mailing.SendOptions,
	send func(context.Context, mailing.SendOptions) (*mailing.SendSummary, error)) int {
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go secondInterrupt(ctx, hard, cancelHard, sig, stderr)

	prog := newProgress(total, stderr, tty)
	opts.Hard, opts.Out, opts.Progress = hard, prog.logWriter(), prog.add
	sum, err := send(ctx, opts)
	prog.finish(err == nil && !sum.Limited)
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
