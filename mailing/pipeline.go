package mailing

import (
	"context"
	"errors"
	"io"
	"runtime"
	"sync"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/render"
)

// errStop ends a pipeline early without an error (preview's limit, the
// test send's one message).
var errStop = errors.New("stop")

// row is one CSV row travelling through the pipeline.
type row struct {
	rec render.Recipient
	// problems are the CSV reader's (bad address, duplicate, ...).
	problems campaign.Problems
	// held: the pipeline's hold func kept the row back (send: an earlier
	// run settled it); it was neither checked against the suppress lists
	// nor rendered.
	held bool
	// suppressed: a suppress list names the address.
	suppressed bool
	// rendered: msg and err hold the outcome of Render.
	rendered bool
	msg      *render.Message
	err      error
	// sinkErr is the sink's error, when the pipeline has a sink.
	sinkErr error
	// cancelled: the run stopped before this row was rendered.
	cancelled bool
	done      chan struct{}
}

// pipeline is the one ordered render pipeline of check, preview, send and
// the test send: it streams the recipients in CSV order, renders valid rows
// on GOMAXPROCS goroutines ahead of the consumer, and hands every row to the
// consumer in CSV order, so output and journal stay deterministic while
// rendering uses every core. Memory stays flat: at most ahead rows are in
// flight.
type pipeline struct {
	recs *campaign.Recipients
	sup  *campaign.Suppressions
	// rd renders the valid rows; nil renders none (group mode, where the
	// caller renders one message after the stream, or a renderer that
	// could not be built).
	rd *render.Renderer
	// hold, when set, is asked about every valid row before the suppress
	// lists; a row it holds goes to the consumer unrendered.
	hold func(render.Recipient) bool
	// sink, when set, runs on the goroutine that rendered a row, so that
	// slow output (a file per message) runs on every core too.
	sink func(*row) error
	// ahead bounds the rows waiting for the consumer; 0 means 4 per core.
	ahead int
}

// run calls each for every row in CSV order, after its message is rendered
// (when it is rendered at all). It stops when each returns an error
// (errStop is no error) or ctx is done, and returns after every goroutine it
// started has ended. A cancelled ctx is the caller's to report: run then
// returns nil; no row whose rendering had not begun by the stop is
// rendered, and no row reaches each once the stop is seen (a row rendered
// just before it may still be handed on).
func (p *pipeline) run(parent context.Context, each func(*row) error) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	workers := runtime.GOMAXPROCS(0)
	ahead := p.ahead
	if ahead <= 0 {
		ahead = 4 * workers
	}
	work := make(chan *row, workers)
	order := make(chan *row, ahead)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { p.render(ctx, work) })
	}
	var readErr error
	go func() {
		defer close(order)
		defer close(work)
		readErr = p.produce(ctx, work, order)
	}()

	var err error
	for r := range order {
		if ctx.Err() != nil {
			break
		}
		<-r.done
		if r.cancelled {
			break
		}
		if err = each(r); err != nil {
			break
		}
	}
	cancel()
	for range order { // let the producer end
	}
	wg.Wait()
	if err == nil {
		err = readErr // order is closed: the producer has set it
	}
	if errors.Is(err, errStop) || parent.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// produce reads the rows in order and queues each valid one for rendering
// before it joins the order, never ahead by more than the channels hold.
func (p *pipeline) produce(ctx context.Context, work, order chan<- *row) error {
	for {
		rec, err := p.recs.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		r := &row{rec: rec, done: make(chan struct{})}
		if err != nil && !errors.As(err, &r.problems) {
			return err
		}
		if r.problems == nil {
			switch {
			case p.hold != nil && p.hold(rec):
				r.held = true
			case p.sup.Suppressed(rec.Email):
				r.suppressed = true
			default:
				r.rendered = p.rd != nil
			}
		}
		if r.rendered {
			select {
			case work <- r:
			case <-ctx.Done():
				return nil
			}
		} else {
			close(r.done)
		}
		select {
		case order <- r:
		case <-ctx.Done():
			return nil
		}
	}
}

// render renders the rows from work until it is closed; once ctx is done
// it renders no more and marks the rows cancelled.
func (p *pipeline) render(ctx context.Context, work <-chan *row) {
	for r := range work {
		if ctx.Err() != nil {
			r.cancelled = true
			close(r.done)
			continue
		}
		r.msg, r.err = p.rd.Render(r.rec)
		if r.err == nil && p.sink != nil {
			r.sinkErr = p.sink(r)
		}
		close(r.done)
	}
}
