package sender

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxBackoff caps the retry delay of one message.
const maxBackoff = 5 * time.Minute

// Pool shares at most Concurrency connections between goroutines, paces
// transactions with one rate limiter, and retries temporary failures. It
// is safe for concurrent use.
type Pool struct {
	c   *Client
	pc  PoolConfig
	lim *rate.Limiter
	// slots holds one token per connection that may be in use; idle
	// connections are only taken by a slot holder, so open connections
	// never outnumber the slots.
	slots chan struct{}

	mu     sync.Mutex
	idle   []*pooled
	closed bool
}

type pooled struct {
	cn   *Conn
	used int
}

// NewPool returns a Pool over c shaped by pc (zero fields take the
// defaults documented on PoolConfig). It does not connect.
func NewPool(c *Client, pc PoolConfig) *Pool {
	if pc.Concurrency <= 0 {
		pc.Concurrency = 1
	}
	if pc.Retries <= 0 {
		pc.Retries = 1
	}
	if pc.Backoff <= 0 {
		pc.Backoff = 2 * time.Second
	}
	if pc.MaxRcpt <= 0 {
		pc.MaxRcpt = 100
	}
	if pc.Burst <= 0 {
		pc.Burst = 1
	}
	p := &Pool{c: c, pc: pc, slots: make(chan struct{}, pc.Concurrency)}
	if pc.Rate > 0 {
		p.lim = rate.NewLimiter(rate.Limit(pc.Rate), pc.Burst)
	}
	return p
}

// SetRate changes the pool's rate and burst while it sends: a worker of a
// cluster takes its share of the campaign's rate, which changes as workers
// join and leave. It has no effect on a pool made without a rate.
func (p *Pool) SetRate(perSecond float64, burst int) {
	if p.lim == nil || perSecond <= 0 {
		return
	}
	p.lim.SetLimit(rate.Limit(perSecond))
	p.lim.SetBurst(max(burst, 1))
}

// Send delivers msg from from to every address of to, in transactions of
// at most MaxRcpt recipients, and returns one RcptResult per address, in
// order. Temporary failures are retried, per recipient, with exponential
// backoff and jitter up to Retries attempts; a 452 sends the rest in a new
// transaction at once. Recipients still failing temporarily at the end are
// Deferred; a recipient whose outcome is Unknown is never retried.
//
// The error is non-nil when the run should not go on: IsFatal(err) for a
// configuration or policy failure; an error matching ErrUnreachable when
// no connection could be opened to the relay, returned at once without
// retrying, so that the caller can pause every message rather than each
// retry on its own; or the context's error. Undecided recipients are
// then Deferred. Per-recipient failures are not errors.
func (p *Pool) Send(ctx context.Context, from string, to []string, msg []byte) (*Result, error) {
	return p.SendHooks(ctx, from, to, msg, Hooks{})
}

// Hooks let a caller act at two moments of a message's delivery, so that
// it can journal its intent durably without holding the wire up for it.
type Hooks struct {
	// Start is called once, when the rate limiter lets the message go and
	// before its first command: a crash before Start leaves nothing to
	// record. When Start fails, nothing is sent.
	Start func() error
	// Commit is called once, at the last moment at which the message
	// cannot have been delivered: with DATA, before the body of the first
	// transaction that has an accepted recipient, so that work started in
	// Start (an fsync, say) overlaps the MAIL, RCPT and DATA round trips;
	// with CHUNKING, before the first group is written, since the message
	// leaves with it. When Commit fails, nothing more is written, nothing
	// is delivered, and the error is fatal.
	Commit func() error
	// Once makes one round of the message: recipients deferred by a
	// temporary failure come back Deferred at once instead of after a
	// backoff, for the caller to try again later (Pool.Backoff) while it
	// sends other messages; a greylisting relay then holds up no worker.
	Once bool
}

// SendHooks is Send with Hooks. Every recipient not delivered when a hook
// fails is Deferred and the hook's error is returned.
func (p *Pool) SendHooks(ctx context.Context, from string, to []string, msg []byte, h Hooks) (*Result, error) {
	committed := false
	commit := func() error {
		if committed || h.Commit == nil {
			return nil
		}
		committed = true
		return h.Commit()
	}
	res := &Result{Rcpts: make([]RcptResult, len(to))}
	for i, a := range to {
		res.Rcpts[i] = RcptResult{Addr: a}
	}
	tries := make([]int, len(to))
	ready := make([]int, len(to))
	for i := range ready {
		ready[i] = i
	}
	var waiting []int
	stop := func(err error) (*Result, error) {
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Command: "MAIL FROM", Temporary: true, Err: err}
		}
		for i := range res.Rcpts {
			if res.Rcpts[i].Status == 0 {
				res.Rcpts[i].Status, res.Rcpts[i].Err = Deferred, e
			}
		}
		return res, err
	}
	for round := 0; len(ready) > 0 || len(waiting) > 0; {
		if len(ready) == 0 {
			if err := sleep(ctx, p.backoff(round)); err != nil {
				return stop(fmt.Errorf("send: %w", err))
			}
			round++
			ready, waiting = waiting, nil
			continue
		}
		n := min(len(ready), p.pc.MaxRcpt)
		batch := ready[:n]
		ready = ready[n:]
		addrs := make([]string, n)
		for j, i := range batch {
			addrs[j] = to[i]
		}
		if p.lim != nil {
			if err := p.lim.Wait(ctx); err != nil {
				return stop(fmt.Errorf("send: rate limit: %w", err))
			}
		}
		if h.Start != nil {
			if err := h.Start(); err != nil {
				return stop(fmt.Errorf("send: %w", err))
			}
			h.Start = nil
		}
		r, err := p.transact(ctx, from, addrs, msg, commit)
		res.Attempts++
		if err != nil && (IsFatal(err) || errors.Is(err, ErrUnreachable)) {
			for j, i := range batch {
				if st := r.Rcpts[j].Status; st != Deferred {
					res.Rcpts[i] = r.Rcpts[j]
				}
			}
			return stop(err)
		}
		var overflow []int
		for j, i := range batch {
			rr := r.Rcpts[j]
			rr.Addr = to[i]
			res.Rcpts[i] = rr
			if rr.Status != Deferred {
				continue
			}
			var e *Error
			if errors.As(rr.Err, &e) && e.Code == 452 && j > 0 && r.Rcpts[0].Status != Deferred {
				// Too many recipients for this transaction: not a failure.
				res.Rcpts[i].Status = 0
				overflow = append(overflow, i)
				continue
			}
			tries[i]++
			if tries[i] < p.pc.Retries && !h.Once {
				res.Rcpts[i].Status = 0
				waiting = append(waiting, i)
			}
		}
		ready = append(overflow, ready...)
		if err := ctx.Err(); err != nil {
			return stop(fmt.Errorf("send: %w", err))
		}
	}
	return res, nil
}

// Retries is the number of attempts a temporary failure gets
// (PoolConfig.Retries with its default).
func (p *Pool) Retries() int { return p.pc.Retries }

// Backoff is the delay before retry round (0 for the first retry): the
// rule Send uses itself, for a caller that retries with Hooks.Once.
func (p *Pool) Backoff(round int) time.Duration { return p.backoff(round) }

// backoff is the delay before retry round: Backoff doubled per round,
// capped, with "equal jitter" (half fixed, half random) so that
// connections deferred together do not retry in lockstep.
func (p *Pool) backoff(round int) time.Duration {
	d := p.pc.Backoff << min(round, 20)
	if d <= 0 || d > maxBackoff {
		d = maxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// transact runs one transaction on a pooled connection, holding a slot
// only for its duration.
func (p *Pool) transact(ctx context.Context, from string, to []string, msg []byte, commit func() error) (*Result, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return deferAll(to, &Error{Command: "CONNECT", Temporary: true, Err: ctx.Err()})
	}
	defer func() { <-p.slots }()
	pc, err := p.get(ctx, false)
	if err != nil {
		return deferAll(to, err)
	}
	pc.used++
	pc.cn.commit = commit
	r, err := pc.cn.Send(ctx, from, to, msg)
	pc.cn.commit = nil // before put: the connection may serve another goroutine next
	if isStale(err) {
		// The idle connection had died; nothing of the message was
		// accepted. This costs a redial, not an attempt, and a fresh
		// connection cannot be stale, so once is enough.
		p.put(pc)
		if pc, err = p.get(ctx, true); err != nil {
			return deferAll(to, err)
		}
		pc.used++
		pc.cn.commit = commit
		r, err = pc.cn.Send(ctx, from, to, msg)
		pc.cn.commit = nil
	}
	p.put(pc)
	return r, err
}

func deferAll(to []string, err error) (*Result, error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Command: "CONNECT", Temporary: true, Err: err}
	}
	r := &Result{Rcpts: make([]RcptResult, len(to)), Attempts: 1}
	for i, a := range to {
		r.Rcpts[i] = RcptResult{Addr: a, Status: Deferred, Err: e, Reply: e.Reply()}
	}
	return r, err
}

// get returns an idle connection, or a new one when there is none or
// fresh is set. An idle connection is handed out as it is, with no RSET
// (a transaction that ended cleanly leaves nothing to reset, RFC 5321
// section 4.1.1.4): one the server dropped while idle is found by its
// next transaction's first step (Conn.Send), and transact redials, so it
// costs a redial, not a retry.
func (p *Pool) get(ctx context.Context, fresh bool) (*pooled, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, &Error{Command: "CONNECT", Err: errors.New("pool is closed"), fatal: true}
	}
	if len(p.idle) > 0 && !fresh {
		pc := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		p.mu.Unlock()
		return pc, nil
	}
	p.mu.Unlock()
	cn, err := p.c.Dial(ctx)
	if err != nil {
		return nil, err
	}
	return &pooled{cn: cn}, nil
}

// put keeps a healthy connection for reuse, or closes it (QUIT) when it
// broke, has carried PerConnection messages, took maxRefusals refusals
// (Conn.spent: before the relay's own error limit ends it), or the pool
// is closed.
func (p *Pool) put(pc *pooled) {
	p.mu.Lock()
	keep := !p.closed && !pc.cn.broken && !pc.cn.spent() && (p.pc.PerConnection <= 0 || pc.used < p.pc.PerConnection)
	if keep {
		p.idle = append(p.idle, pc)
	}
	p.mu.Unlock()
	if !keep {
		_ = pc.cn.Close()
	}
}

// Close closes the idle connections; connections in use close when their
// transaction ends. Send fails after Close.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	// QUIT on every connection at once: one after another, a slow relay
	// made a stopping run wait its deadline once per connection.
	errs := make([]error, len(idle))
	var wg sync.WaitGroup
	for i, pc := range idle {
		wg.Go(func() { errs[i] = pc.cn.Close() })
	}
	wg.Wait()
	return errors.Join(errs...)
}
