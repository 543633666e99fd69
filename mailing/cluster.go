package mailing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/cluster"
	"github.com/mailrun/mailrun/journal"
	"github.com/mailrun/mailrun/render"
)

// BatchSize is how many recipients go in one batch of work: enough that
// the queue's per-message cost is small beside the sends, few enough that
// a dead worker's batch is soon taken by another.
const BatchSize = 50

// maxPublished bounds the campaign files published to the cluster: a
// campaign folder that holds far more than a campaign is a mistake the
// coordinator names rather than uploads.
const maxPublished = 256 << 20

// workBatch is one batch of work as it travels through the queue. The
// recipients' data travels with it, so a worker never reads the list.
type workBatch struct {
	Campaign string       `json:"campaign"` // the campaign's name
	Key      string       `json:"key"`      // cluster.CampaignKey of it
	File     string       `json:"file"`     // the campaign file, in its folder
	Files    string       `json:"files"`    // the files' content key
	Pass     int          `json:"pass"`
	N        int          `json:"n"`
	Rcpts    []workRcpt   `json:"rcpts"`
	Rate     float64      `json:"rate"`
	Burst    int          `json:"burst"`
	Sent     time.Time    `json:"queued"`
	Over     cluster.Over `json:"over"` // what a worker may take over
}

type workRcpt struct {
	Row    int               `json:"row"`
	Email  string            `json:"email"`
	Fields map[string]string `json:"fields"`
}

// publishedFiles lists the files of c's folder a worker needs to render
// its messages: every regular file but dot-files, journals and the
// password files (passwords come from each worker's own environment and
// never travel through the cluster).
func publishedFiles(c *campaign.Campaign) ([]string, error) {
	skip := map[string]bool{}
	for _, f := range []string{c.SMTP.PasswordFile, c.Bounces.PasswordFile} {
		if f != "" {
			skip[filepath.ToSlash(filepath.Clean(f))] = true
		}
	}
	var names []string
	var total int64
	err := filepath.WalkDir(c.Dir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(c.Dir(), p)
		if err != nil {
			return err
		}
		if rel != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if skip[rel] || strings.Contains(d.Name(), ".journal") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if total += info.Size(); total > maxPublished {
			return fmt.Errorf("%s: the campaign folder holds over %d MB: a worker gets every file in it; keep only the campaign there", c.Dir(), maxPublished>>20)
		}
		names = append(names, rel)
		return nil
	})
	return names, err
}

// ClusterOptions adds to SendOptions what a coordinator needs.
type ClusterOptions struct {
	// Poll is how often the coordinator looks whether every batch is done;
	// zero means a quarter of a second.
	Poll time.Duration
}

// Coordinate sends the campaign through the workers of a cluster: it
// checks and plans as Send does, publishes the campaign's files and the
// work, and writes the local journal from the outcomes the workers
// record, so status and report work as after Send. Rerun after any stop,
// on any machine: what the cluster holds is not queued again.
//
// Recipients whose claim is still "sending" when every batch is done
// belong to a worker that died mid-message: they are recorded unknown, as
// after a crash of Send.
func Coordinate(ctx context.Context, c *campaign.Campaign, cn *cluster.Conn, opts SendOptions, co ClusterOptions) (*SendSummary, error) {
	start := time.Now()
	opts, out := opts.withDefaults(c)
	if co.Poll <= 0 {
		co.Poll = 250 * time.Millisecond
	}
	sum := &SendSummary{Journal: opts.Journal}
	if c.Mode == "group" {
		return sum, &SetupError{errors.New("a group campaign is one message: send it without --cluster")}
	}
	if opts.Limit > 0 {
		return sum, &SetupError{errors.New("--limit is not available with --cluster")}
	}
	st, err := startRun(c, opts, "send --cluster", out)
	if err != nil {
		return sum, err
	}
	j, sup := st.j, st.sup
	defer j.Close()
	co2 := &coordinator{c: c, cn: cn, ck: cluster.CampaignKey(c.Name), opts: co, lastWorkerCheck: time.Now()}
	if err := co2.begin(ctx, st.fp, st.files, opts.Force, out); err != nil {
		return sum, err
	}
	recs, err := campaign.OpenRecipients(c)
	if err != nil {
		return sum, &SetupError{err}
	}
	defer recs.Close()
	r := &sendRun{c: c, j: j, opts: opts, out: out, sum: sum, hard: context.WithoutCancel(ctx), cluster: true}
	r.stopCtx, r.stop = context.WithCancelCause(ctx)
	defer r.stop(nil)
	co2.r = r
	err = co2.run(recs, sup)
	if ferr := j.Close(); err == nil && ferr != nil {
		err = fmt.Errorf("journal: %w", ferr)
	}
	sum.Elapsed = time.Since(start)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return sum, err
}

// coordinator is the state of one Coordinate.
type coordinator struct {
	c    *campaign.Campaign
	cn   *cluster.Conn
	ck   string
	opts ClusterOptions
	r    *sendRun

	run0     cluster.Run
	runRev   uint64
	filesKey string

	mu       sync.Mutex
	claims   map[string]cluster.ClaimEntry // key -> claim read at the start
	expect   map[string]render.Recipient   // keys of this pass's recipients
	recorded map[string]uint64             // key -> revision journaled
	state    map[string]journal.Status     // key -> the outcome counted

	lastWorkerCheck time.Time // noWorkers, from wait's goroutine only
	idleNoted       bool
}

// begin reads or creates the campaign's run in the cluster, refuses a run
// whose files changed (unless force), and publishes the files.
func (co *coordinator) begin(ctx context.Context, fp string, files map[string]string, force bool, out io.Writer) error {
	names, err := publishedFiles(co.c)
	if err != nil {
		return &SetupError{err}
	}
	key, err := cluster.FilesKey(co.c.Dir(), names)
	if err != nil {
		return &SetupError{fmt.Errorf("campaign files: %w", err)}
	}
	co.filesKey = key
	run, rev, err := co.cn.GetRun(ctx, co.ck)
	switch {
	case cluster.NoRun(err):
		run = cluster.Run{Campaign: co.c.Name, Began: time.Now().UTC(), Pass: 1}
	case err != nil:
		return err
	case run.Fingerprint != fp && !force:
		return &ChangedError{Journal: "cluster run " + co.c.Name, Began: run.Began, Files: changedFiles(journal.Header{Files: run.Files}, files)}
	case run.Fingerprint != fp:
		fmt.Fprintf(out, "warning: cluster run %s: campaign files changed since it began (%s); going on, as forced\n", co.c.Name, run.Began.Format(time.DateTime))
	}
	if run.PassDone {
		run.Pass++
		run.PassDone = false
	}
	rate, err := co.c.Rate()
	if err != nil {
		return &SetupError{err}
	}
	run.Fingerprint, run.Files, run.FilesKey = fp, files, key
	run.Rate, run.Burst = rate, co.c.Send.Burst
	if err := co.cn.PutFiles(ctx, key, co.c.Dir(), names); err != nil {
		return fmt.Errorf("publish the campaign files: %w", err)
	}
	if co.runRev, err = co.cn.PutRun(ctx, co.ck, run, rev); err != nil {
		return err
	}
	co.run0 = run
	return nil
}

// run streams the list, queues the batches of this pass, and journals
// the outcomes until every batch is done.
func (co *coordinator) run(recs *campaign.Recipients, sup *campaign.Suppressions) error {
	ctx := co.r.stopCtx
	all, err := co.cn.Claims(ctx, co.ck)
	if err != nil {
		return fmt.Errorf("read the cluster's claims: %w", err)
	}
	co.claims = make(map[string]cluster.ClaimEntry, len(all))
	for _, ce := range all {
		co.claims[ce.Key] = ce
	}
	co.expect, co.recorded, co.state = map[string]render.Recipient{}, map[string]uint64{}, map[string]journal.Status{}

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	ready := make(chan struct{})
	watchErr := make(chan error, 1)
	go func() {
		watchErr <- co.cn.WatchClaims(watchCtx, co.ck, func() { close(ready) }, co.seen)
	}()
	select {
	case <-ready:
	case err := <-watchErr:
		return fmt.Errorf("watch the outcomes: %w", err)
	}

	if err := co.queue(recs, sup); err != nil {
		return err
	}
	if err := co.wait(ctx); err != nil {
		return err
	}
	return co.r.journalErr()
}

// queue streams the list in CSV order and publishes batches of the
// recipients this pass sends: batch n holds the rows n*BatchSize to
// (n+1)*BatchSize-1 of the list, so that a rerun of the coordinator forms
// the same batches and the markers tell which are queued.
func (co *coordinator) queue(recs *campaign.Recipients, sup *campaign.Suppressions) error {
	r := co.r
	p := &pipeline{recs: recs, sup: sup, hold: r.settled}
	ordinal := 0
	cur := &workBatch{Campaign: co.c.Name, Key: co.ck, File: filepath.Base(co.c.Path()), Files: co.filesKey,
		Pass: co.run0.Pass, Rate: co.run0.Rate, Burst: co.run0.Burst, Over: co.over()}
	flush := func() error {
		if len(cur.Rcpts) == 0 {
			return nil
		}
		cur.Sent = time.Now().UTC()
		data, err := json.Marshal(cur)
		if err != nil {
			return err
		}
		if _, err := co.cn.Queue(r.stopCtx, co.ck, cur.Pass, cur.N, data); err != nil {
			return err
		}
		cur.Rcpts = cur.Rcpts[:0]
		return nil
	}
	err := p.run(r.stopCtx, func(rw *row) error {
		n := ordinal / BatchSize
		ordinal++
		if n != cur.N {
			if err := flush(); err != nil {
				return err
			}
			cur.N = n
		}
		if rw.problems != nil || rw.held || rw.suppressed {
			r.skip(rw)
			return nil
		}
		rec := rw.rec
		key := cluster.ClaimKey(co.ck, campaign.AddrKey(rec.Email))
		ce, ok := co.claims[key]
		switch {
		case ok && ce.State == cluster.Sending:
			co.want(key, rec) // in flight, or its worker died: wait for the pass
		case ok && ce.Settled() && !r.again(journal.Status(ce.State)):
			co.earlier(key, ce)
		default:
			co.want(key, rec)
			cur.Rcpts = append(cur.Rcpts, workRcpt{Row: rec.Row, Email: rec.Email, Fields: rec.Fields})
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return err
}

// over says what a worker may take over in this run, beside deferred and
// skipped: the send's --retry-failed and --resend-unknown, for outcomes
// recorded before the run began (the claims it read first).
func (co *coordinator) over() cluster.Over {
	o := cluster.Over{}
	for _, ce := range co.claims {
		o.UpTo = max(o.UpTo, ce.Rev)
	}
	if co.r.opts.RetryFailed {
		o.States = append(o.States, cluster.Failed)
	}
	if co.r.opts.ResendUnknown {
		o.States = append(o.States, cluster.Unknown)
	}
	return o
}

func (co *coordinator) want(key string, rec render.Recipient) {
	co.mu.Lock()
	co.expect[key] = render.Recipient{Row: rec.Row, Email: rec.Email}
	co.mu.Unlock()
}

// earlier journals, as settled by an earlier run, a recipient the cluster
// settled but this machine's journal does not hold (the coordinator ran
// elsewhere before, or died before journaling it).
func (co *coordinator) earlier(key string, ce cluster.ClaimEntry) {
	r := co.r
	st := journal.Status(ce.State)
	r.mu.Lock()
	if r.sum.Earlier == nil {
		r.sum.Earlier = map[journal.Status]int{}
	}
	r.sum.Earlier[st]++
	r.sum.Previously++
	r.mu.Unlock()
	if err := r.j.Queue(entryOf(ce)); err != nil {
		r.fail(fmt.Errorf("journal: %w", err))
	}
	if r.opts.Progress != nil {
		r.opts.Progress(journal.Entry{Row: ce.Row, Email: ce.Email, Status: st, Reason: EarlierRun})
	}
}

// seen journals an outcome a worker recorded for a recipient of this
// pass, once per revision, and counts it once per recipient.
func (co *coordinator) seen(ce cluster.ClaimEntry) error { return co.record(ce, false) }

// record is seen; final is the sweep at the end of the pass, which takes
// the outcome a recipient has then even when it is older than this run
// (a deferred of an earlier run of the same pass).
func (co *coordinator) record(ce cluster.ClaimEntry, final bool) error {
	if !ce.Settled() {
		return nil
	}
	co.mu.Lock()
	if _, ok := co.expect[ce.Key]; !ok || co.recorded[ce.Key] >= ce.Rev {
		co.mu.Unlock()
		return nil
	}
	// An outcome from before this run (a deferred the pass sends again)
	// waits for the new one, until the sweep.
	if old, ok := co.claims[ce.Key]; ok && old.Rev >= ce.Rev && !final {
		co.mu.Unlock()
		return nil
	}
	co.recorded[ce.Key] = ce.Rev
	old, counted := co.state[ce.Key]
	e := entryOf(ce)
	co.state[ce.Key] = e.Status
	co.mu.Unlock()
	if !counted {
		co.r.settle(e, true)
		return nil
	}
	// A later outcome of the same recipient in this pass: a deferred one
	// another worker took over, an unknown the worker corrected.
	if err := co.r.j.Queue(e); err != nil {
		co.r.fail(fmt.Errorf("journal: %w", err))
	}
	co.r.mu.Lock()
	*co.r.sum.counter(old)--
	*co.r.sum.counter(e.Status)++
	co.r.mu.Unlock()
	return nil
}

func entryOf(ce cluster.ClaimEntry) journal.Entry {
	e := journal.Entry{Row: ce.Row, Email: ce.Email, Status: journal.Status(ce.State), MessageID: ce.MessageID,
		Attempts: ce.Attempts, Error: ce.Error, Time: ce.Time}
	if ce.State == cluster.Skipped {
		e.Reason = "invalid"
	}
	if ce.Code != 0 {
		e.Reply = &journal.Reply{Code: ce.Code, Enhanced: ce.Enhanced, Text: ce.Text}
	}
	return e
}

// wait polls until every batch of the pass is done, then records unknown
// the recipients whose worker died holding them, journals what the watch
// has not shown yet, and marks the pass done. A hub that cannot be reached
// is waited for up to send.give_up_after.
func (co *coordinator) wait(ctx context.Context) error {
	t := time.NewTicker(co.opts.Poll)
	defer t.Stop()
	var downSince time.Time
	for {
		done, all, err := co.cn.BatchesDone(ctx, co.ck, co.run0.Pass)
		switch {
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			if downSince.IsZero() {
				downSince = time.Now()
				co.r.print(fmt.Sprintf("cluster: %v; waiting for it", err))
			}
			if limit := giveUpAfter(co.c.Send.GiveUpAfter); time.Since(downSince) > limit {
				return fmt.Errorf("cluster unreachable for %s (send.give_up_after); rerun to continue: %w", limit, err)
			}
		case done == all:
			return co.finish(ctx)
		default:
			downSince = time.Time{}
			co.noWorkers(ctx)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// noWorkers says, once, when work waits and no worker is live: every
// worker may have stopped on its relay's refusal, or none was started.
func (co *coordinator) noWorkers(ctx context.Context) {
	if co.idleNoted || time.Since(co.lastWorkerCheck) < 10*time.Second {
		return
	}
	co.lastWorkerCheck = time.Now()
	if ws, err := co.cn.Workers(ctx); err == nil && len(ws) == 0 {
		co.idleNoted = true
		co.r.print("cluster: work is queued but no worker is live: start one with mailrun worker URL (the work waits)")
	}
}

// finish ends a pass whose batches are all done.
func (co *coordinator) finish(ctx context.Context) error {
	all, err := co.cn.Claims(ctx, co.ck)
	if err != nil {
		return err
	}
	byKey := make(map[string]cluster.ClaimEntry, len(all))
	for _, ce := range all {
		byKey[ce.Key] = ce
	}
	co.mu.Lock()
	expect := maps.Clone(co.expect)
	co.mu.Unlock()
	for k, rec := range expect {
		ce, ok := byKey[k]
		switch {
		case !ok:
			// Never claimed (a batch that a forced rerun formed
			// otherwise, say): deferred, and the next pass sends it.
			co.r.settle(journal.Entry{Row: rec.Row, Email: rec.Email, Status: journal.Deferred,
				Error: "not claimed by any worker in this pass"}, true)
			continue
		case ce.State == cluster.Sending:
			if ce, err = co.cn.GiveUp(ctx, k, ce.Rev, ce.Claim); err != nil {
				return err
			}
		}
		if err := co.record(ce, true); err != nil {
			return err
		}
	}
	run := co.run0
	run.PassDone = true
	if _, err := co.cn.PutRun(ctx, co.ck, run, co.runRev); err != nil {
		return err
	}
	return nil
}

// ClusterStatus is what the cluster holds of a campaign.
type ClusterStatus struct {
	Run      cluster.Run
	Counts   map[string]int
	Workers  []cluster.Worker
	Done     int // batches of the current pass done
	Batches  int // batches of the current pass
	Replicas int
}

// StatusOf reads the cluster's state of campaign c directly.
func StatusOf(ctx context.Context, c *campaign.Campaign, cn *cluster.Conn) (*ClusterStatus, []cluster.ClaimEntry, error) {
	ck := cluster.CampaignKey(c.Name)
	run, _, err := cn.GetRun(ctx, ck)
	if err != nil {
		return nil, nil, err
	}
	st := &ClusterStatus{Run: run, Counts: map[string]int{}, Replicas: cn.Replicas()}
	claims, err := cn.Claims(ctx, ck)
	if err != nil {
		return nil, nil, err
	}
	for _, ce := range claims {
		st.Counts[ce.State]++
	}
	if st.Done, st.Batches, err = cn.BatchesDone(ctx, ck, run.Pass); err != nil {
		return nil, nil, err
	}
	if st.Workers, err = cn.Workers(ctx); err != nil {
		return nil, nil, err
	}
	return st, claims, nil
}

// ClusterReport is every recipient's outcome as the cluster holds it, in
// row order, for journal.WriteEntries. A claim still sending is in flight
// or held by a worker that died (the coordinator records those unknown).
func ClusterReport(ctx context.Context, c *campaign.Campaign, cn *cluster.Conn) ([]journal.Entry, error) {
	claims, err := cn.Claims(ctx, cluster.CampaignKey(c.Name))
	if err != nil {
		return nil, err
	}
	out := make([]journal.Entry, 0, len(claims))
	for _, ce := range claims {
		out = append(out, entryOf(ce))
	}
	slices.SortFunc(out, func(a, b journal.Entry) int { return a.Row - b.Row })
	return out, nil
}
