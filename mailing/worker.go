package mailing

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/cluster"
	"github.com/mailrun/mailrun/journal"
	"github.com/mailrun/mailrun/render"
	"github.com/mailrun/mailrun/sender"
	"github.com/nats-io/nats.go/jetstream"
)

// WorkerOptions shapes a cluster worker.
type WorkerOptions struct {
	// Name is the worker's name in claims and in the list of live
	// workers; it should be unique in the cluster.
	Name string
	// Concurrency is the most simultaneous connections to the relay;
	// zero means the campaign's send.concurrency.
	Concurrency int
	// SMTP, when set, replaces the campaign's relay (see OverrideSMTP):
	// each worker may send through its own relay or address.
	SMTP string
	// Cache is the folder the campaign files are fetched into; empty
	// means a folder under the user's cache directory.
	Cache string
	// Out receives the worker's log lines; nil discards them.
	Out io.Writer
	// Trace, when set, receives the SMTP protocol trace (AUTH redacted).
	Trace io.Writer
	// Idle, when above zero, ends Work after that long without work
	// (tests and one-off runs); zero works until ctx ends.
	Idle time.Duration
	// RelayPause is the first pause when the relay cannot be reached (it
	// doubles, up to 5 minutes); zero means 20 seconds, as for Send.
	RelayPause time.Duration
}

// WorkerError stops a worker that cannot send: its relay refused the
// login or the sender, its campaign files cannot be used. The batch it
// held went back to the queue for the others.
type WorkerError struct {
	Reason string
	Err    error
}

func (e *WorkerError) Error() string { return "worker stopped: " + e.Reason + ": " + e.Err.Error() }
func (e *WorkerError) Unwrap() error { return e.Err }

// Work takes batches from the cluster's queue, renders each recipient's
// message from the campaign files the coordinator published, claims the
// recipient just before its message goes (the claim is synced by the
// cluster before the first SMTP command), sends it through the worker's
// relay and records the outcome in place of the claim. It returns when
// ctx ends, after the messages in flight, or with a *WorkerError.
//
// The worker's share of the campaign's send.rate is the rate divided
// among the live workers, renewed every heartbeat.
func Work(ctx context.Context, cn *cluster.Conn, o WorkerOptions) error {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		o.Cache = filepath.Join(base, "mailrun", "worker")
	}
	w := &worker{cn: cn, o: o, camps: map[string]*workCampaign{}, live: 1}
	w.stopCtx, w.stop = context.WithCancelCause(ctx)
	defer w.stop(nil)
	defer w.closeAll()
	if err := cn.Join(w.stopCtx, cluster.Worker{Name: o.Name, Concurrency: o.Concurrency, Relay: o.SMTP, Since: time.Now().UTC()}); err != nil {
		return fmt.Errorf("join the cluster: %w", err)
	}
	// The others cut their share of the rate at their next heartbeat:
	// wait for it before adding this worker's.
	w.rebalance()
	if !sleepCtx(w.stopCtx, cluster.Heartbeat()+cluster.Heartbeat()/4) {
		return nil
	}
	w.rebalance()
	go w.rebalancer()
	return w.loop(ctx)
}

// worker is the state of one Work.
type worker struct {
	cn *cluster.Conn
	o  WorkerOptions

	stopCtx context.Context
	stop    context.CancelCauseFunc

	outMu sync.Mutex // writes to o.Out
	mu    sync.Mutex
	camps map[string]*workCampaign // by files key
	live  int
	fatal *WorkerError
}

// workCampaign is a campaign a worker has fetched, with its renderer and
// its pool of connections to the relay.
type workCampaign struct {
	c     *campaign.Campaign
	rd    *render.Renderer
	pool  *sender.Pool
	rate  float64
	burst int
	// gate pauses the worker's messages while the relay is away.
	gate *relayGate
	// sem bounds the messages on their way, over every batch in flight,
	// to the pool's connections: a claim is taken just before a message's
	// first command, so a worker killed with kill -9 leaves at most that
	// many claims without an outcome.
	sem chan struct{}
}

// loop fetches batches until ctx ends, keeping at most two in flight so
// that the next batch is ready when one ends and no more are held from
// the other workers.
func (w *worker) loop(ctx context.Context) error {
	inFlight := make(chan struct{}, 2)
	var batches sync.WaitGroup
	defer batches.Wait()
	idleSince := time.Now()
	for w.stopCtx.Err() == nil {
		if w.paused() {
			continue
		}
		select {
		case inFlight <- struct{}{}:
		case <-w.stopCtx.Done():
			continue
		}
		b, err := w.cn.Next(w.stopCtx, 2*time.Second)
		if b == nil {
			<-inFlight
			if err != nil && w.stopCtx.Err() == nil {
				w.printf("cluster: %v", err)
				sleepCtx(w.stopCtx, time.Second)
			}
			if w.o.Idle > 0 && time.Since(idleSince) > w.o.Idle && len(inFlight) == 0 {
				break
			}
			continue
		}
		idleSince = time.Now()
		var wb workBatch
		if err := json.Unmarshal(b.Data, &wb); err != nil {
			w.printf("batch: %v; dropped", err)
			_ = b.Done(w.stopCtx) // no worker could read it
			<-inFlight
			continue
		}
		wc, err := w.campaign(&wb)
		if err != nil {
			_ = b.Release()
			w.fail(&WorkerError{Reason: "campaign " + wb.Campaign, Err: err})
			<-inFlight
			break
		}
		batches.Go(func() {
			defer func() { <-inFlight }()
			w.batch(b, &wb, wc)
		})
	}
	batches.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fatal != nil {
		return w.fatal
	}
	return nil
}

// batch sends to every recipient of one batch, concurrency at a time, and
// acknowledges it when each has an outcome; a stop part way gives the
// batch back for another worker.
func (w *worker) batch(b *cluster.Batch, wb *workBatch, wc *workCampaign) {
	done := make(chan struct{})
	go func() { // tell the cluster this worker is alive and on it
		// Often enough for any ack wait a worker may set on the shared
		// consumer (3 s or more), whatever this one read when it joined.
		t := time.NewTicker(min(max(w.cn.AckWait()/3, 100*time.Millisecond), time.Second))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = b.Progress()
			}
		}
	}()
	sem := wc.sem
	var wg sync.WaitGroup
	var mu sync.Mutex
	complete := true
	for _, rc := range wb.Rcpts {
		sem <- struct{}{}
		// A stop, or a relay gone away, gives the rest of the batch back
		// to the cluster at once.
		if w.stopCtx.Err() != nil || wc.gate.paused() {
			<-sem
			mu.Lock()
			complete = false
			mu.Unlock()
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if !w.send(wb, wc, rc) {
				mu.Lock()
				complete = false
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(done)
	ctx := context.WithoutCancel(w.stopCtx)
	mu.Lock()
	defer mu.Unlock()
	if !complete {
		_ = b.Release()
		return
	}
	if err := b.Done(ctx); err != nil {
		w.printf("batch %d: %v", wb.N, err)
	}
}

// send delivers one recipient's message. It returns false when the
// recipient has no outcome from this worker and may need another: the
// worker stopped before sending, or its claim could not be written.
func (w *worker) send(wb *workBatch, wc *workCampaign, rc workRcpt) bool {
	rec := render.Recipient{Row: rc.Row, Email: rc.Email, Fields: rc.Fields}
	key := campaign.AddrKey(rc.Email)
	claim := cluster.Claim{Worker: w.o.Name, Token: token(), Row: rc.Row, Email: rc.Email, Time: time.Now().UTC()}
	ctx := context.WithoutCancel(w.stopCtx)
	msg, err := wc.rd.Render(rec)
	if err != nil {
		rev, cerr := w.cn.Claim(ctx, wb.Key, key, claim, wb.Over)
		if cerr != nil {
			return errors.Is(cerr, cluster.ErrTaken)
		}
		claim.State, claim.Error = cluster.Skipped, err.Error()
		w.printf("%s: %s:%d <%s>: render: %v", wb.Campaign, wc.c.Recipients.File, rc.Row, rc.Email, err)
		return w.settle(wb, key, rev, claim)
	}
	claim.MessageID = msg.MessageID
	if wc.gate.wait(w.stopCtx) != nil {
		return false // stopped while the relay was away
	}
	var rev uint64
	var claimErr error
	// Until it is claimed the message only waits for its turn, and a stop
	// cancels it; once claimed it is in flight and finishes.
	sendCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	started := false
	defer context.AfterFunc(w.stopCtx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !started {
			cancel()
		}
	})()
	res, err := wc.pool.SendHooks(sendCtx, msg.From, msg.To, msg.Data, sender.Hooks{
		Start: func() error {
			mu.Lock()
			defer mu.Unlock()
			if err := w.stopCtx.Err(); err != nil {
				claimErr = err
				return err
			}
			rev, claimErr = w.claim(ctx, wb, key, claim)
			started = claimErr == nil
			return claimErr
		},
	})
	switch {
	case errors.Is(claimErr, cluster.ErrTaken):
		return true // somebody else has it: not this worker's to report
	case claimErr != nil:
		if w.stopCtx.Err() == nil {
			w.printf("<%s>: claim: %v; not sent", rc.Email, claimErr)
		}
		return false
	case rev == 0:
		return false // stopped before its turn: never claimed, not sent
	}
	e := resultEntry(rec, msg, res, 0, err)
	claim.State, claim.Attempts, claim.Error, claim.Time = string(e.Status), e.Attempts, e.Error, time.Now().UTC()
	if e.Reply != nil {
		claim.Code, claim.Enhanced, claim.Text = e.Reply.Code, e.Reply.Enhanced, e.Reply.Text
	}
	if e.Status != journal.Sent {
		w.printf("%s: %s:%d <%s>: send: %s: %s", wb.Campaign, wc.c.Recipients.File, rc.Row, rc.Email, e.Status, e.Error)
	}
	ok := w.settle(wb, key, rev, claim)
	switch {
	case errors.Is(err, sender.ErrUnreachable):
		// The relay is away: this worker pauses (the campaign's
		// relayGate) and its batch goes back at once, for a worker
		// whose relay answers; the recipient, deferred, is claimed
		// again by whoever sends it.
		if !wc.gate.down(time.Now()) {
			w.fail(&WorkerError{Reason: fmt.Sprintf("the relay has been unreachable for %s (send.give_up_after)", wc.gate.giveUp), Err: err})
		}
		return false
	case err != nil && sender.IsFatal(err):
		w.fail(&WorkerError{Reason: "the relay refused this worker", Err: err})
	case err == nil:
		wc.gate.up()
	}
	return ok
}

// claim claims the recipient, trying again with the same token while the
// cluster does not answer (a hub restarting): a create whose reply was
// lost is then found as this worker's own, instead of leaving a claim
// nobody sends, which the coordinator would have to call unknown.
func (w *worker) claim(ctx context.Context, wb *workBatch, key string, c cluster.Claim) (uint64, error) {
	start := time.Now()
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		rev, err := w.cn.Claim(ctx, wb.Key, key, c, wb.Over)
		if err == nil || errors.Is(err, cluster.ErrTaken) || time.Since(start) > claimFor || w.stopCtx.Err() != nil {
			return rev, err
		}
		time.Sleep(wait)
	}
}

// claimFor is how long a claim is tried while the cluster does not
// answer: a hub restart takes seconds.
const claimFor = 30 * time.Second

// settle records the outcome, trying again while the cluster cannot be
// reached (a hub restarting) for up to settleFor, or settleStopping once
// the worker is stopping; after that, or when another write took the key
// (the coordinator gave the claim up), the recipient stays as the cluster
// holds it: unknown at worst, never sent twice.
func (w *worker) settle(wb *workBatch, key string, rev uint64, c cluster.Claim) bool {
	ctx := context.WithoutCancel(w.stopCtx)
	start := time.Now()
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := w.cn.Settle(ctx, wb.Key, key, rev, c)
		if err == nil {
			return true
		}
		limit := settleFor
		if w.stopCtx.Err() != nil {
			limit = settleStopping
		}
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || time.Since(start) > limit {
			w.printf("<%s>: outcome %s not recorded: %v", c.Email, c.State, err)
			return false
		}
		time.Sleep(wait)
	}
}

// How long a worker keeps trying to record an outcome: a hub restart
// takes seconds; a stopping worker does not wait long for one.
const (
	settleFor      = 5 * time.Minute
	settleStopping = 10 * time.Second
)

// campaign returns the fetched campaign of a batch, fetching the files,
// loading it and dialling its relay the first time.
//
// Only the loop calls it, one batch at a time; the lock guards the map
// alone, so that a long fetch does not hold up the rate's rebalance.
func (w *worker) campaign(wb *workBatch) (*workCampaign, error) {
	w.mu.Lock()
	wc := w.camps[wb.Files]
	w.mu.Unlock()
	if wc != nil {
		return wc, nil
	}
	dir := filepath.Join(w.o.Cache, wb.Files)
	if _, err := os.Stat(filepath.Join(dir, wb.File)); err != nil {
		tmp := dir + ".part-" + token()
		if err := w.cn.GetFiles(w.stopCtx, wb.Files, tmp); err != nil {
			os.RemoveAll(tmp)
			return nil, err
		}
		if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, os.ErrExist) {
			os.RemoveAll(tmp)
			if _, serr := os.Stat(filepath.Join(dir, wb.File)); serr != nil {
				return nil, err
			}
		}
	}
	c, err := campaign.Load(filepath.Join(dir, wb.File))
	if err != nil {
		return nil, err
	}
	if w.o.SMTP != "" {
		if err := OverrideSMTP(c, w.o.SMTP); err != nil {
			return nil, err
		}
	}
	if c.SMTP.PasswordFile != "" && c.SMTP.PasswordEnv == "" {
		return nil, fmt.Errorf("smtp.password_file: a password file does not travel through the cluster; give each worker its password in an environment variable (smtp.password_env)")
	}
	rd, err := newRenderer(c, nil)
	if err != nil {
		return nil, err
	}
	client, pc, err := Relay(c, w.o.Trace)
	if err != nil {
		rd.Close()
		return nil, err
	}
	if w.o.Concurrency > 0 {
		pc.Concurrency = w.o.Concurrency
	}
	wc = &workCampaign{c: c, rd: rd, rate: wb.Rate, burst: wb.Burst, sem: make(chan struct{}, max(pc.Concurrency, 1)),
		gate: newRelayGate(w.o.RelayPause, c.Send.GiveUpAfter, func(s string) { w.printf("campaign %s: %s", wb.Campaign, s) })}
	w.mu.Lock()
	pc.Rate, pc.Burst = share(wb.Rate, wb.Burst, w.live)
	wc.pool = sender.NewPool(client, pc)
	w.camps[wb.Files] = wc
	w.mu.Unlock()
	w.printf("campaign %s: files %s, relay %s", wb.Campaign, wb.Files, client)
	return wc, nil
}

// share is one worker's part of a cluster-wide rate and burst.
func share(rate float64, burst, live int) (float64, int) {
	live = max(live, 1)
	return rate / float64(live), max(burst/live, 1)
}

// rebalance reads the live workers and sets every pool's share of its
// campaign's rate.
func (w *worker) rebalance() {
	ctx, cancel := context.WithTimeout(w.stopCtx, 5*time.Second)
	defer cancel()
	ws, err := w.cn.Workers(ctx)
	if err != nil {
		return // keep the last share: the cluster is away
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.live = max(len(ws), 1)
	for _, wc := range w.camps {
		wc.pool.SetRate(share(wc.rate, wc.burst, w.live))
	}
}

func (w *worker) rebalancer() {
	t := time.NewTicker(cluster.Heartbeat())
	defer t.Stop()
	for {
		select {
		case <-w.stopCtx.Done():
			return
		case <-t.C:
			w.rebalance()
		}
	}
}

// paused waits out the pause of any campaign's relay before the worker
// takes more work, so the others take it meanwhile; it reports whether
// the worker stopped.
func (w *worker) paused() bool {
	w.mu.Lock()
	gates := make([]*relayGate, 0, len(w.camps))
	for _, wc := range w.camps {
		gates = append(gates, wc.gate)
	}
	w.mu.Unlock()
	for _, g := range gates {
		if g.wait(w.stopCtx) != nil {
			return true
		}
	}
	return false
}

func (w *worker) fail(e *WorkerError) {
	w.mu.Lock()
	if w.fatal == nil {
		w.fatal = e
	}
	w.mu.Unlock()
	w.stop(e)
}

func (w *worker) closeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, wc := range w.camps {
		wc.pool.Close()
		wc.rd.Close()
	}
}

func (w *worker) printf(format string, args ...any) {
	w.outMu.Lock()
	defer w.outMu.Unlock()
	fmt.Fprintf(w.o.Out, "%s: %s\n", w.o.Name, campaign.Printable(fmt.Sprintf(format, args...)))
}

// token is a random claim token.
func token() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
