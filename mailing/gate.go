package mailing

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// relayGate is the relay as a run's workers see it: up, or away since a
// time, with a pause that every worker takes before its next message, so
// that a relay that went away is retried by the run as a whole rather than
// by each message.
type relayGate struct {
	first, giveUp time.Duration
	note          func(string)

	mu        sync.Mutex
	downSince time.Time
	until     time.Time // workers wait until then
	pause     time.Duration
}

// maxRelayPause caps the doubling pause.
const maxRelayPause = 5 * time.Minute

func newRelayGate(first, giveUp time.Duration, note func(string)) *relayGate {
	if first <= 0 {
		first = 20 * time.Second
	}
	return &relayGate{first: first, giveUp: giveUpAfter(giveUp), note: note}
}

// wait returns when the pause is over, or ctx's error when the run stops
// first.
func (g *relayGate) wait(ctx context.Context) error {
	g.mu.Lock()
	d := time.Until(g.until)
	g.mu.Unlock()
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return ctx.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// down notes that the relay could not be reached at now and starts a pause
// unless one is under way; it returns false once the relay has been away
// for giveUp.
func (g *relayGate) down(now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.downSince.IsZero() {
		g.downSince, g.pause = now, g.first
	}
	if now.Sub(g.downSince) >= g.giveUp {
		return false
	}
	if now.Before(g.until) {
		return true // another worker started this pause
	}
	g.until = now.Add(g.pause)
	g.note(fmt.Sprintf("relay unreachable, retrying in %s", g.pause.Round(time.Second)))
	g.pause = min(2*g.pause, maxRelayPause)
	return true
}

// paused reports whether a pause is under way.
func (g *relayGate) paused() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return time.Now().Before(g.until)
}

// up notes that a message went through: the relay is back.
func (g *relayGate) up() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.downSince.IsZero() {
		g.downSince, g.until = time.Time{}, time.Time{}
		g.note("relay reachable again")
	}
}

// retryBudget bounds the bytes of deferred messages that wait for their
// next attempt at once.
const retryBudget = 256 << 20

// budget is a counting limit on bytes held: acquire waits while taking n
// would pass max, unless nothing is held (so one message larger than max
// still goes).
type budget struct {
	max  int64
	mu   sync.Mutex
	used int64
	free chan struct{} // closed and replaced at every release
}

func (b *budget) acquire(ctx context.Context, n int64) bool {
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.max {
			b.used += n
			b.mu.Unlock()
			return true
		}
		if b.free == nil {
			b.free = make(chan struct{})
		}
		free := b.free
		b.mu.Unlock()
		select {
		case <-free:
		case <-ctx.Done():
			return false
		}
	}
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	if b.free != nil {
		close(b.free)
		b.free = nil
	}
	b.mu.Unlock()
}

// giveUpAfter is send.give_up_after with its default: how long a run waits
// for a relay, or a cluster, that went away.
func giveUpAfter(d time.Duration) time.Duration {
	if d <= 0 {
		return 15 * time.Minute
	}
	return d
}
