package mailing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/journal"
	"github.com/mailrun/mailrun/render"
	"github.com/mailrun/mailrun/sender"
)

// Mailer delivers one rendered message to its envelope recipients. It is all
// the send run needs of the wire: sender.Pool satisfies it, and so can a test
// recorder. The Result holds one entry per address of to, in order; an error
// with no Result means nothing was delivered to anybody.
type Mailer interface {
	Send(ctx context.Context, from string, to []string, msg []byte) (*sender.Result, error)
}

var (
	_ Mailer      = (*sender.Pool)(nil)
	_ hooksMailer = (*sender.Pool)(nil)
	_ retryMailer = (*sender.Pool)(nil)
)

// hooksMailer is a Mailer that says when a message leaves the rate
// limiter and when it is about to become deliverable. The run queues its
// intent at the first and waits for it to be durable at the second, so the
// journal's fsync overlaps the MAIL, RCPT and DATA round trips, and a crash
// leaves undecided only messages that were really on their way.
type hooksMailer interface {
	SendHooks(ctx context.Context, from string, to []string, msg []byte, h sender.Hooks) (*sender.Result, error)
}

// retryMailer lets the run retry a deferred message itself (Hooks.Once),
// with the Mailer's own backoff, so that a worker goes on with the next
// message instead of waiting: a greylisting relay defers every first try,
// and a run whose workers each waited out every backoff took one backoff
// per message instead of about one in all.
type retryMailer interface {
	hooksMailer
	Retries() int
	Backoff(round int) time.Duration
}

// SendOptions shapes one send run. The zero value journals next to the
// campaign and skips everyone the journal already holds as sent or failed.
type SendOptions struct {
	// Journal is the journal file; default "<name>.journal" next to the
	// campaign file.
	Journal string
	// RetryFailed sends again to recipients that failed permanently before.
	RetryFailed bool
	// ResendUnknown sends again to recipients whose outcome is unknown (the
	// connection died after the final "."): they may get the message twice.
	ResendUnknown bool
	// Force continues a journal although the campaign files changed since it
	// began.
	Force bool
	// Hard, when cancelled, abandons the messages in flight (a second
	// Ctrl-C). Cancelling the ctx given to Send only stops taking new
	// recipients. Nil means only ctx counts, for taking new recipients.
	Hard context.Context
	// Out receives notices: what the journal lets the run skip, problems of
	// rows, the reason of a stop. Nil discards them.
	Out io.Writer
	// RelayPause is the first pause of all workers when the relay cannot be
	// reached in the middle of a run (it doubles, up to 5 minutes); zero
	// means 20 seconds.
	RelayPause time.Duration
	// Limit, when above zero, is the most new recipients this run takes, in
	// CSV order (a warm-up or a staged send); the next run goes on after
	// them. Rows skipped as invalid, suppressed or settled do not count.
	Limit int
	// Progress, when set, is called once for every recipient the run
	// settles (sent, failed, deferred, unknown or skipped), from several
	// goroutines at once.
	Progress func(journal.Entry)
}

// withDefaults fills in the journal next to c and returns the writer of
// the run's notices (io.Discard without Out), for Send and Coordinate.
func (o SendOptions) withDefaults(c *campaign.Campaign) (SendOptions, io.Writer) {
	if o.Journal == "" {
		o.Journal = JournalPath(c)
	}
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	return o, out
}

// SendSummary counts what one send run did, not what earlier runs did.
type SendSummary struct {
	Sent, Failed, Deferred, Unknown, Skipped int
	// Invalid counts the skipped recipients whose row or message had an
	// error (bad address, template failure): they got nothing.
	Invalid int
	// Previously counts recipients not attempted because the journal
	// already had an outcome for them; Earlier splits them by that outcome.
	Previously int
	Earlier    map[journal.Status]int
	// Limited reports that SendOptions.Limit ended the run before the list.
	Limited bool
	// Elapsed is the wall time of the run.
	Elapsed time.Duration
	// Journal is the journal file used.
	Journal string
}

// counter is the count of status st; statuses it does not count share a
// throwaway.
func (s *SendSummary) counter(st journal.Status) *int {
	switch st {
	case journal.Sent:
		return &s.Sent
	case journal.Failed:
		return &s.Failed
	case journal.Deferred:
		return &s.Deferred
	case journal.Unknown:
		return &s.Unknown
	case journal.Skipped:
		return &s.Skipped
	}
	var none int
	return &none
}

// Rate is messages sent per second over the run.
func (s *SendSummary) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Sent) / s.Elapsed.Seconds()
}

// String is the summary line printed at the end of a run.
func (s *SendSummary) String() string {
	line := fmt.Sprintf("send: %d sent, %d failed, %d deferred, %d unknown, %d skipped, %d done before; %s, %.1f msg/s",
		s.Sent, s.Failed, s.Deferred, s.Unknown, s.Skipped, s.Previously, s.Elapsed.Round(time.Millisecond), s.Rate())
	if s.Limited {
		line += "; limit reached, the next run goes on"
	}
	return line
}

// SetupError is returned by Send when the run cannot start: a template,
// a suppress file, the recipient list or the journal is unusable. Nothing
// was sent; it is a configuration problem (exit code 2), not a delivery
// failure.
type SetupError struct{ Err error }

func (e *SetupError) Error() string { return e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

// EarlierRun is the Reason of the entries Send hands to
// SendOptions.Progress for recipients an earlier run settled.
const EarlierRun = "settled by an earlier run"

// ErrChanged is matched by the error of Send (a *ChangedError) when the
// campaign files changed since the journal began and SendOptions.Force is
// not set.
var ErrChanged = errors.New("campaign files changed since the journal began")

// ChangedError says which campaign files changed since the journal began.
type ChangedError struct {
	Journal string
	Began   time.Time
	// Files are the changed files; nil when the journal is older than the
	// per-file hashes and cannot tell.
	Files []string
}

func (e *ChangedError) Error() string {
	s := fmt.Sprintf("%s: %v (began %s)", e.Journal, ErrChanged, e.Began.Local().Format(time.DateTime))
	if len(e.Files) > 0 {
		s += ": " + strings.Join(e.Files, ", ")
	}
	return s
}

// Is makes errors.Is(err, ErrChanged) true.
func (e *ChangedError) Is(target error) bool { return target == ErrChanged }

// AbortError stops a run that is likely misconfigured: the relay refused
// the sender or the login, TLS failed, or too many recipients in a row
// failed permanently.
type AbortError struct {
	Reason string
	Err    error
}

func (e *AbortError) Error() string { return "run stopped: " + e.Reason + ": " + e.Err.Error() }
func (e *AbortError) Unwrap() error { return e.Err }

// Send sends the campaign through m, recording every recipient's outcome in
// the journal before it counts, so that running it again after a crash, a
// Ctrl-C or kill -9 sends to everyone not yet sent and to nobody twice.
//
// The flow: open and lock the journal; stream the recipients, skipping
// suppressed, invalid and duplicate rows (recorded as skipped) and those the
// journal settled in an earlier run; render each message; record the intent
// (sending, fsynced); send; record the outcome. A recipient whose intent has
// no outcome after a crash is unknown and is not sent again unless
// ResendUnknown.
//
// Cancelling ctx stops taking new recipients; the messages in flight finish
// and Send returns ctx's error with the summary. Send returns an *AbortError
// when the relay refuses the sender or the login, when TLS fails, or after
// send.abort_after permanent failures in a row; ErrChanged when the campaign
// changed since the journal began (without Force); and an error matching
// journal.ErrLocked when another run holds the journal.
func Send(ctx context.Context, c *campaign.Campaign, m Mailer, opts SendOptions) (*SendSummary, error) {
	start := time.Now()
	opts, out := opts.withDefaults(c)
	sum := &SendSummary{Journal: opts.Journal}

	rd, err := newRenderer(c, nil)
	if err != nil {
		return sum, &SetupError{err}
	}
	defer rd.Close()
	st, err := startRun(c, opts, "send", out)
	if err != nil {
		return sum, err
	}
	j, sup := st.j, st.sup
	defer j.Close()
	if c.Mode != "group" {
		// Every worker needs its intent durable before its message goes:
		// one sync for all of them (journal.Gather).
		j.Gather(c.Send.Concurrency, gatherWait)
	}
	recs, err := campaign.OpenRecipients(c)
	if err != nil {
		return sum, &SetupError{err}
	}
	defer recs.Close()
	hard := opts.Hard
	if hard == nil {
		hard = context.WithoutCancel(ctx)
	}

	r := &sendRun{c: c, m: m, j: j, rd: rd, opts: opts, out: out, sum: sum, hard: hard}
	r.gate = newRelayGate(opts.RelayPause, c.Send.GiveUpAfter, r.print)
	r.retries = budget{max: retryBudget}
	r.stopCtx, r.stop = context.WithCancelCause(ctx)
	defer r.stop(nil)
	if c.Mode == "group" {
		err = r.group(recs, sup)
	} else {
		err = r.individual(recs, sup)
	}
	if ferr := j.Close(); err == nil && ferr != nil {
		err = fmt.Errorf("journal: %w", ferr)
	}
	sum.Elapsed = time.Since(start)
	// An abort says more than the interrupt that may have come first.
	if err == nil || errors.Is(err, context.Canceled) {
		if ae := r.aborted(); ae != nil {
			err = ae
		} else if cause := context.Cause(r.stopCtx); err == nil && cause != nil && !errors.Is(cause, context.Canceled) {
			err = cause
		} else if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
	}
	return sum, err
}

// runStart is what a send run opens before its first recipient, Send's
// and Coordinate's alike.
type runStart struct {
	sup   *campaign.Suppressions
	fp    string
	files map[string]string // the fingerprint's hash per file
	j     *journal.Journal
}

// startRun loads the suppress lists, fingerprints the campaign and opens
// and locks its journal as command. A journal begun with other files is
// refused (a *ChangedError) unless opts.Force, which warns on out; other
// failures are a *SetupError. The caller closes the journal.
func startRun(c *campaign.Campaign, opts SendOptions, command string, out io.Writer) (*runStart, error) {
	sup, err := campaign.LoadSuppressions(c)
	if err != nil {
		return nil, &SetupError{err}
	}
	fp, files, err := fingerprints(c)
	if err != nil {
		return nil, &SetupError{err}
	}
	j, err := journal.Open(opts.Journal, journal.Header{Campaign: c.Name, Fingerprint: fp, Files: files, Command: command}, campaign.AddrKey)
	if err != nil {
		return nil, &SetupError{err}
	}
	if began := j.Began(); began.Fingerprint != fp {
		if !opts.Force {
			j.Close()
			return nil, &ChangedError{Journal: opts.Journal, Began: began.Time, Files: changedFiles(began, files)}
		}
		fmt.Fprintf(out, "warning: %s: campaign files changed since the journal began (%s); going on, as forced\n", opts.Journal, began.Time.Format(time.DateTime))
	}
	return &runStart{sup: sup, fp: fp, files: files, j: j}, nil
}

// sendRun is the state of one Send.
type sendRun struct {
	c    *campaign.Campaign
	m    Mailer
	j    *journal.Journal
	rd   *render.Renderer
	opts SendOptions
	out  io.Writer
	hard context.Context

	stopCtx context.Context
	stop    context.CancelCauseFunc

	gate *relayGate // the pause all workers take while the relay is away
	// retries are the deferred messages waiting for their next attempt,
	// each in a goroutine of retryWG, within a budget of bytes.
	retries budget
	retryWG sync.WaitGroup

	// cluster: the outcomes come from a cluster's workers (Coordinate),
	// which send.abort_after cannot stop from here.
	cluster bool

	mu      sync.Mutex // guards sum, the counters below and writes to out
	sum     *SendSummary
	permRun int // consecutive permanent failures
	jerr    error
	abort   *AbortError // the first reason the run was aborted
}

// individual sends one message per recipient: the pipeline renders ahead
// on GOMAXPROCS goroutines, and send.concurrency workers each journal and
// send through their connection, taking the messages in CSV order.
// Rendering apart keeps a connection from idling while its worker renders,
// and the workers' waits (the journal's fsync, the server's replies) from
// idling the CPU.
func (r *sendRun) individual(recs *campaign.Recipients, sup *campaign.Suppressions) error {
	workers := max(r.c.Send.Concurrency, 1)
	rendered := make(chan *row, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for rw := range rendered {
				if r.stopCtx.Err() == nil {
					r.deliver(rw)
				}
			}
		})
	}
	p := &pipeline{recs: recs, sup: sup, rd: r.rd, hold: r.settled, ahead: runtime.GOMAXPROCS(0) + 2*workers}
	taken := 0
	err := p.run(r.stopCtx, func(rw *row) error {
		if !rw.rendered {
			r.skip(rw)
			return nil
		}
		if rw.err == nil {
			if r.limited(taken) {
				return errStop
			}
			taken++
		}
		select {
		case rendered <- rw:
		case <-r.stopCtx.Done():
		}
		return nil
	})
	close(rendered)
	wg.Wait()
	r.retryWG.Wait() // retries may start more: Wait sees those too
	if err != nil {
		return err
	}
	return r.journalErr()
}

// limited reports whether SendOptions.Limit stops the run after taken new
// recipients, and notes it in the summary.
func (r *sendRun) limited(taken int) bool {
	if r.opts.Limit <= 0 || taken < r.opts.Limit {
		return false
	}
	r.mu.Lock()
	r.sum.Limited = true
	r.mu.Unlock()
	return true
}

// settled reports whether an earlier run settled rec for good, so that this
// run neither renders nor sends it.
func (r *sendRun) settled(rec render.Recipient) bool {
	st, ok := r.j.Status(rec.Email)
	return ok && !r.again(st)
}

// skip records a row that is not sent: invalid or duplicate, settled by an
// earlier run, or suppressed.
func (r *sendRun) skip(rw *row) {
	rec := rw.rec
	switch {
	case rw.problems != nil:
		ps := rw.problems
		r.print(ps.Error())
		e := journal.Entry{Row: rec.Row, Email: rec.Email, Status: journal.Skipped, Reason: "invalid", Error: ps.Error()}
		if !ps.HasErrors() {
			e.Reason, e.Error = "duplicate", ""
		}
		// Only a row with an address of its own is journaled: a
		// duplicate, or a bad row whose address the journal already
		// knows, must not overwrite that recipient's outcome (a
		// "skipped" would make the next run send again).
		_, known := r.j.Status(rec.Email)
		r.settle(e, rec.Email != "" && ps.HasErrors() && !known)
	case rw.held:
		st, _ := r.j.Status(rec.Email)
		r.mu.Lock()
		if r.sum.Earlier == nil {
			r.sum.Earlier = map[journal.Status]int{}
		}
		r.sum.Earlier[st]++
		r.sum.Previously++
		r.mu.Unlock()
		if r.opts.Progress != nil {
			r.opts.Progress(journal.Entry{Row: rec.Row, Email: rec.Email, Status: st, Reason: EarlierRun})
		}
	case rw.suppressed:
		r.settle(journal.Entry{Row: rec.Row, Email: rec.Email, Status: journal.Skipped, Reason: "suppressed"}, true)
	}
}

// again reports whether a recipient with last status st is sent in this run.
func (r *sendRun) again(st journal.Status) bool {
	switch st {
	case journal.Sent, journal.Bounced:
		return false
	case journal.Failed:
		return r.opts.RetryFailed
	case journal.Unknown, journal.Sending:
		return r.opts.ResendUnknown
	default: // deferred, skipped: their cause may be gone
		return true
	}
}

// gatherWait bounds how long a worker's intent waits for the other
// workers' to share its sync: about four syncs of a local disk, a few
// percent of a message's time to a remote relay.
const gatherWait = time.Millisecond

// deliver journals and sends the rendered message of one recipient.
func (r *sendRun) deliver(rw *row) { r.deliverRound(rw, 0) }

// deliverRound is deliver's attempt number round+1.
func (r *sendRun) deliverRound(rw *row, round int) {
	rec, msg, err := rw.rec, rw.msg, rw.err
	if err != nil {
		e := journal.Entry{Row: rec.Row, Email: rec.Email, Status: journal.Skipped, Reason: "invalid", Error: err.Error()}
		r.print(fmt.Sprintf("%s:%d <%s>: render: %v", r.c.File(r.c.Recipients.File), rec.Row, rec.Email, err))
		r.settle(e, true)
		return
	}
	for {
		if r.gate.wait(r.stopCtx) != nil {
			return // stopped while the relay was away: the next run sends it
		}
		res, err, ok := r.attempt(rec, msg)
		if !ok {
			return
		}
		if errors.Is(err, sender.ErrUnreachable) && r.relayDown(rec, msg, err) {
			continue
		}
		if err == nil {
			r.gate.up()
		}
		if r.retryLater(rw, res, err, round) {
			return
		}
		if res != nil {
			res.Attempts += round // the earlier rounds' attempts
		}
		r.outcome([]render.Recipient{rec}, msg, res, err)
		return
	}
}

// retryLater takes a message whose only recipient was deferred by a
// temporary failure and, while it has attempts left, journals it deferred
// and sends it again after the Mailer's backoff from a goroutine of its
// own, so that the worker goes on with other messages. Pending retries
// hold their messages in memory, so at most retryBudget bytes of them
// wait at once; past that the worker waits for room, as it did before.
func (r *sendRun) retryLater(rw *row, res *sender.Result, err error, round int) bool {
	rm, ok := r.m.(retryMailer)
	if !ok || err != nil || res == nil || len(res.Rcpts) != 1 || res.Rcpts[0].Status != sender.Deferred || round+1 >= rm.Retries() {
		return false
	}
	rec, msg := rw.rec, rw.msg
	e := journal.Entry{Row: rec.Row, Email: rec.Email, Status: journal.Deferred, MessageID: msg.MessageID, Attempts: round + 1}
	if rr := res.Rcpts[0]; rr.Err != nil {
		e.Error = rr.Err.Error()
	}
	if jerr := r.j.Queue(e); jerr != nil {
		r.fail(fmt.Errorf("journal: %w", jerr))
		return true
	}
	size := int64(len(msg.Data))
	if !r.retries.acquire(r.stopCtx, size) {
		r.settle(e, false) // stopped: deferred, for the next run
		return true
	}
	wait := rm.Backoff(round)
	r.retryWG.Go(func() {
		defer r.retries.release(size)
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
			r.deliverRound(rw, round+1)
		case <-r.stopCtx.Done():
			r.settle(e, false) // stopped: deferred, for the next run
		}
	})
	return true
}

// attempt journals the intent and sends msg once. ok is false when there is
// no outcome to record: the run stopped before the message's turn, or the
// intent never became durable (nothing was delivered).
func (r *sendRun) attempt(rec render.Recipient, msg *render.Message) (res *sender.Result, err error, ok bool) {
	entry := journal.Entry{Row: rec.Row, Email: rec.Email, Status: journal.Sending, MessageID: msg.MessageID}
	journalErr := func(err error) error {
		if err != nil {
			err = fmt.Errorf("journal: %w", err)
			r.fail(err)
		}
		return err
	}
	if hm, isHooks := r.m.(hooksMailer); isHooks {
		// Until Start, the message is only waiting for its turn (the rate
		// limiter): a stop (first Ctrl-C) cancels it, unjournaled, so the
		// next run sends it. From Start on it is in flight and finishes;
		// only the hard context ends it then.
		ctx, cancel := context.WithCancel(r.hard)
		defer cancel()
		var mu sync.Mutex
		started := false
		stopWait := context.AfterFunc(r.stopCtx, func() {
			mu.Lock()
			defer mu.Unlock()
			if !started {
				cancel()
			}
		})
		defer stopWait()
		_, once := r.m.(retryMailer)
		res, err = hm.SendHooks(ctx, msg.From, msg.To, msg.Data, sender.Hooks{
			Once: once,
			Start: func() error {
				mu.Lock()
				if err := ctx.Err(); err != nil {
					mu.Unlock()
					return err
				}
				// stopWait's cancel runs in a goroutine of its own and may
				// not have run yet: a stop is a stop from its first moment.
				if r.stopCtx.Err() != nil {
					mu.Unlock()
					cancel()
					return context.Cause(r.stopCtx)
				}
				started = true
				mu.Unlock()
				return journalErr(r.j.Queue(entry))
			},
			Commit: func() error { return journalErr(r.j.Flush()) },
		})
		mu.Lock()
		notStarted := !started
		mu.Unlock()
		if notStarted && r.journalErr() == nil && r.stopCtx.Err() != nil {
			return nil, nil, false // stopped before its turn: no intent, no outcome
		}
	} else {
		if journalErr(r.j.Record(entry)) != nil {
			return nil, nil, false
		}
		res, err = r.m.Send(r.hard, msg.From, msg.To, msg.Data)
	}
	return res, err, r.journalErr() == nil
}

// relayDown handles a relay that cannot be reached (sender.ErrUnreachable)
// for rec's message, which has not gone. Before any message has gone, it
// is the run's problem, not the recipient's: the run stops at once. Later,
// the message is journaled deferred (a stop during the pause leaves it to
// the next run), every worker pauses with the gate, and true says to try
// again; after send.give_up_after of an unreachable relay the run stops.
func (r *sendRun) relayDown(rec render.Recipient, msg *render.Message, err error) bool {
	r.mu.Lock()
	nothingSent := r.sum.Sent == 0
	r.mu.Unlock()
	stop := func(reason string) bool {
		r.outcome([]render.Recipient{rec}, msg, nil, err)
		r.abortRun(&AbortError{Reason: reason, Err: err})
		return false
	}
	if nothingSent {
		return stop("the relay cannot be reached")
	}
	e := journal.Entry{Row: rec.Row, Email: rec.Email, Status: journal.Deferred, MessageID: msg.MessageID, Error: err.Error()}
	if jerr := r.j.Queue(e); jerr != nil {
		r.fail(fmt.Errorf("journal: %w", jerr))
		return false
	}
	if !r.gate.down(time.Now()) {
		return stop(fmt.Sprintf("the relay has been unreachable for %s (send.give_up_after)", r.gate.giveUp))
	}
	return true
}

// group sends one message to every valid recipient, in transactions of
// send.max_rcpt recipients (the Mailer does the batching).
func (r *sendRun) group(list *campaign.Recipients, sup *campaign.Suppressions) error {
	var recs []render.Recipient
	p := &pipeline{recs: list, sup: sup, hold: r.settled}
	if err := p.run(r.stopCtx, func(rw *row) error {
		switch {
		case rw.problems != nil || rw.held || rw.suppressed:
			r.skip(rw)
		case r.limited(len(recs)):
			return errStop
		default:
			recs = append(recs, rw.rec)
		}
		return nil
	}); err != nil {
		return err
	}
	if len(recs) == 0 || r.stopCtx.Err() != nil {
		return r.journalErr()
	}
	to := make([]string, len(recs))
	for i, rec := range recs {
		to[i] = rec.Email
	}
	msg, err := r.rd.RenderGroup(to)
	if err != nil {
		return fmt.Errorf("render group message: %w", err)
	}
	for _, rec := range recs {
		if err := r.j.Queue(journal.Entry{Row: rec.Row, Email: rec.Email, Status: journal.Sending, MessageID: msg.MessageID}); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
	}
	if err := r.j.Flush(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	res, err := r.m.Send(r.hard, msg.From, msg.To, msg.Data)
	r.outcome(recs, msg, res, err)
	return r.journalErr()
}

// outcome records what happened to recs, whose addresses are the envelope
// of msg in order, and stops the run on a fatal error.
func (r *sendRun) outcome(recs []render.Recipient, msg *render.Message, res *sender.Result, err error) {
	fatal := err != nil && sender.IsFatal(err)
	defer r.tooBigForAll(res)
	for i, rec := range recs {
		e := resultEntry(rec, msg, res, i, err)
		if e.Status != journal.Sent {
			cause := e.Error
			if cause == "" && e.Reply != nil {
				cause = fmt.Sprintf("%d %s %s", e.Reply.Code, e.Reply.Enhanced, e.Reply.Text)
			}
			r.print(fmt.Sprintf("%s:%d <%s>: send: %s: %s", r.c.File(r.c.Recipients.File), rec.Row, rec.Email, e.Status, cause))
		}
		r.settle(e, true)
	}
	if fatal {
		reason := "the relay refused this campaign"
		if errors.Is(err, sender.ErrNoAuth) {
			reason = "smtp.username is set, but the relay offers no AUTH: if it needs no login, leave out smtp.username and its password (or set smtp.auth: none)"
		}
		r.abortRun(&AbortError{Reason: reason, Err: err})
	}
}

// resultEntry is the outcome of rec, the i-th address of msg's envelope,
// from what the Mailer returned: the one rule of Send and of a cluster's
// workers.
func resultEntry(rec render.Recipient, msg *render.Message, res *sender.Result, i int, err error) journal.Entry {
	e := journal.Entry{Row: rec.Row, Email: rec.Email, MessageID: msg.MessageID}
	var rr *sender.RcptResult
	if res != nil && i < len(res.Rcpts) {
		rr = &res.Rcpts[i]
		e.Attempts = res.Attempts
	}
	switch {
	case rr != nil && rr.Status != 0:
		e.Status = statusOf(rr.Status)
		if rr.Reply.Code != 0 {
			e.Reply = &journal.Reply{Code: rr.Reply.Code, Enhanced: rr.Reply.Enhanced, Text: rr.Reply.Text}
		}
		if rr.Err != nil {
			e.Error = rr.Err.Error()
		}
	case err != nil:
		// Nothing reached the server for this recipient: it is sent
		// again by the next run.
		e.Status = journal.Deferred
		e.Error = err.Error()
		var se *sender.Error
		if errors.As(err, &se) && se.Code != 0 {
			e.Reply = &journal.Reply{Code: se.Code, Enhanced: se.Enhanced, Text: se.Text}
		}
	default:
		e.Status = journal.Unknown
		e.Error = "no result from the mailer"
	}
	return e
}

// tooBigForAll stops the run when a message was refused for its size and
// what every message carries (attachments and images that are the same for
// all, render.Renderer.StaticSize) is already over the relay's limit: the
// same content would fail for everyone, one upload refused at a time.
func (r *sendRun) tooBigForAll(res *sender.Result) {
	if res == nil {
		return
	}
	for _, rr := range res.Rcpts {
		var se *sender.SizeError
		if errors.As(rr.Err, &se) && se.Limit > 0 && r.rd.StaticSize() >= se.Limit {
			r.abortRun(&AbortError{
				Reason: fmt.Sprintf("every message carries %d bytes of attachments and images, over the relay's limit of %d", r.rd.StaticSize(), se.Limit),
				Err:    rr.Err,
			})
			return
		}
	}
}

func statusOf(s sender.Status) journal.Status {
	switch s {
	case sender.Delivered:
		return journal.Sent
	case sender.Rejected:
		return journal.Failed
	case sender.Deferred:
		return journal.Deferred
	default:
		return journal.Unknown
	}
}

// settle journals (when record is set) the final entry of a recipient,
// counts it and reports progress. Outcomes are queued, not awaited: the
// worker's next intent waits for them (see journal.Queue), so at most one
// outcome per worker is lost by a crash, and it reads back as unknown.
func (r *sendRun) settle(e journal.Entry, record bool) {
	if record {
		if err := r.j.Queue(e); err != nil {
			r.fail(fmt.Errorf("journal: %w", err))
			return
		}
	}
	r.mu.Lock()
	switch e.Status {
	case journal.Sent:
		r.sum.Sent++
		r.permRun = 0
	case journal.Failed:
		r.sum.Failed++
		r.permRun++
	case journal.Deferred:
		r.sum.Deferred++
	case journal.Unknown:
		r.sum.Unknown++
	case journal.Skipped:
		r.sum.Skipped++
		if e.Reason == "invalid" {
			r.sum.Invalid++
		}
	}
	abort := !r.cluster && e.Status == journal.Failed && r.c.Send.AbortAfter > 0 && r.permRun >= r.c.Send.AbortAfter
	r.mu.Unlock()
	if r.opts.Progress != nil {
		r.opts.Progress(e)
	}
	if abort {
		r.abortRun(&AbortError{
			Reason: fmt.Sprintf("%d permanent failures in a row (send.abort_after), likely a configuration problem", r.c.Send.AbortAfter),
			Err:    errors.New(e.Error),
		})
	}
}

// abortRun stops the run and keeps the first reason, which Send reports
// even when an interrupt stopped the run before.
func (r *sendRun) abortRun(ae *AbortError) {
	r.mu.Lock()
	if r.abort == nil {
		r.abort = ae
	}
	r.mu.Unlock()
	r.stop(ae)
}

func (r *sendRun) aborted() *AbortError {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.abort
}

// fail stops the run on a journal error: without a durable journal a rerun
// could send twice.
func (r *sendRun) fail(err error) {
	r.mu.Lock()
	if r.jerr == nil {
		r.jerr = err
	}
	r.mu.Unlock()
	r.stop(err)
}

func (r *sendRun) journalErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.jerr
}

func (r *sendRun) print(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintln(r.out, s)
}
