package campaign

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/mailrun/mailrun/render"
)

// Report counts what Check or Preview found. The caller maps Errors > 0 to
// exit code 2.
type Report struct {
	// Recipients is the number of data rows read from the CSV.
	Recipients int
	// OK is the number of recipients whose message rendered (and, for
	// Preview, was written); in group mode, the valid addresses.
	OK int
	// Failed is the number of rows skipped because of an error.
	Failed int
	// Duplicates is the number of rows skipped as duplicates.
	Duplicates int
	// Suppressed is the number of rows skipped by the suppress lists.
	Suppressed int
	// Errors and Warnings count the problems printed, the campaign file's
	// included.
	Errors, Warnings int
	// Written is the number of .eml files Preview wrote.
	Written int
	// Elapsed is the time the run took.
	Elapsed time.Duration
}

// Check validates the whole campaign without sending: the campaign file's
// problems (found by Load), the suppress files, the CSV, every address,
// duplicates, and every template, image and attachment for every row, by
// rendering each message and discarding it (group mode: one RenderGroup for
// all valid addresses).
//
// It prints every problem to out as "file:line: field: message", config
// problems first, then the CSV's in row order, each suppressed row as
// "file:row: email: skipped: suppressed", then a summary line such as
// "check: 5 recipients, 4 ok, 1 error, 1 warning, 0 suppressed". Problems are
// counted in the Report, not returned: the error is non-nil only when Check
// could not finish (unreadable CSV, write error, or ctx.Err() when cancelled).
func Check(ctx context.Context, c *Campaign, out io.Writer) (*Report, error) {
	start := time.Now()
	rep := &Report{}
	err := run(ctx, c, out, rep, nil, func(*item) error { return nil }, func(*render.Message) error { return nil })
	rep.Elapsed = time.Since(start)
	if err != nil {
		return rep, err
	}
	_, err = fmt.Fprintf(out, "check: %s, %d ok, %s, %s, %d suppressed\n",
		plural(rep.Recipients, "recipient"), rep.OK, plural(rep.Errors, "error"), plural(rep.Warnings, "warning"), rep.Suppressed)
	return rep, err
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// errStop ends a run early without an error (Preview's limit).
var errStop = errors.New("stop")

// item is one CSV row travelling through the render pipeline.
type item struct {
	rec      render.Recipient
	problems Problems // from the CSV reader
	skip     bool     // suppressed
	msg      *render.Message
	err      error // from Render
	sinkErr  error // from the worker's sink
	done     chan struct{}
}

// run is the pipeline shared by Check and Preview: it prints the config
// problems, loads the suppress lists and the renderer, streams the CSV,
// renders rows on GOMAXPROCS workers, and hands each rendered row to ok in
// CSV order (so output is deterministic) while printing problems. When
// sink is not nil, the worker that rendered a row hands it to sink first,
// so that slow output (a file per message) runs on every core; its error
// reaches ok as item.sinkErr. In group mode it renders one message after
// the stream and hands it to group. Memory stays flat: at most a few rows
// per worker are in flight.
func run(ctx context.Context, c *Campaign, out io.Writer, rep *Report, sink, ok func(*item) error, group func(*render.Message) error) error {
	var werr error // the first write error to out
	emit := func(p Problem) {
		if p.Warning {
			rep.Warnings++
		} else {
			rep.Errors++
		}
		if werr == nil {
			_, werr = fmt.Fprintln(out, p.String())
		}
	}
	for _, p := range c.problems {
		emit(p)
	}
	rc, err := c.RenderConfig()
	var rd *render.Renderer
	if err == nil {
		rd, err = render.New(rc)
	}
	if err != nil {
		emit(c.configProblem(err))
		rd = nil
	} else {
		defer rd.Close()
	}
	sup, err := LoadSuppressions(c)
	if err != nil {
		emit(Problem{File: c.base(), Field: "suppress", Message: err.Error()})
	}
	recs, err := OpenRecipients(c)
	if err != nil {
		var ps Problems
		if !errors.As(err, &ps) {
			return err
		}
		for _, p := range ps {
			emit(p)
		}
		return werr
	}
	defer recs.Close()

	individual := c.Mode != "group" && rd != nil
	var groupTo []string

	parent := ctx
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	workers := runtime.GOMAXPROCS(0)
	work := make(chan *item, workers)
	order := make(chan *item, 4*workers)
	var readErr error
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for it := range work {
				if err := ctx.Err(); err != nil {
					it.err = err // cancelled: render and write no more
					close(it.done)
					continue
				}
				it.msg, it.err = rd.Render(it.rec)
				if it.err == nil && sink != nil {
					it.sinkErr = sink(it)
				}
				close(it.done)
			}
		})
	}
	go func() { // the producer: reads rows in order, never ahead by more than the channels hold
		defer close(order)
		defer close(work)
		for {
			rec, err := recs.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			it := &item{rec: rec, done: make(chan struct{})}
			if err != nil && !errors.As(err, &it.problems) {
				readErr = err
				return
			}
			it.skip = it.problems == nil && sup.Suppressed(rec.Email)
			if it.problems == nil && !it.skip && individual {
				select {
				case work <- it:
				case <-ctx.Done():
					return
				}
			} else {
				close(it.done)
			}
			select {
			case order <- it:
			case <-ctx.Done():
				return
			}
		}
	}()
	// drain lets the producer and the workers end before run returns.
	drain := func() {
		cancel()
		for range order {
		}
		wg.Wait()
	}

	var sinkErr error
	for it := range order {
		if parent.Err() != nil {
			break
		}
		<-it.done
		rep.Recipients++
		switch {
		case it.problems != nil:
			for _, p := range it.problems {
				emit(p)
			}
			if it.problems.HasErrors() {
				rep.Failed++
			} else {
				rep.Duplicates++
			}
		case it.skip:
			rep.Suppressed++
			if werr == nil {
				_, werr = fmt.Fprintf(out, "%s:%d: %s: skipped: suppressed\n", recs.file, it.rec.Row, c.Recipients.Email)
			}
		case rd == nil:
			// render.New failed (already printed): nothing to render with.
		case !individual:
			groupTo = append(groupTo, it.rec.Email)
			rep.OK++
		case it.err != nil:
			emit(renderProblem(recs.file, it.rec.Row, it.err))
			rep.Failed++
		default:
			if sinkErr = ok(it); sinkErr != nil {
				break
			}
			rep.OK++
		}
		if sinkErr != nil {
			break
		}
	}
	drain()
	if err := parent.Err(); err != nil {
		return err
	}
	switch {
	case readErr != nil:
		return readErr
	case sinkErr != nil && !errors.Is(sinkErr, errStop):
		return sinkErr
	}
	if c.Mode == "group" && rd != nil && sinkErr == nil {
		if len(groupTo) == 0 {
			emit(Problem{File: recs.file, Message: "no valid recipient for the group message"})
		} else if msg, err := rd.RenderGroup(groupTo); err != nil {
			emit(renderProblem(c.base(), 0, err))
		} else if err := group(msg); err != nil {
			return err
		}
	}
	return werr
}

// renderProblem turns a render error into a Problem on the CSV row.
func renderProblem(file string, row int, err error) Problem {
	var fe *render.FieldError
	if errors.As(err, &fe) {
		return Problem{File: file, Line: row, Field: fe.Field, Message: fe.Err.Error()}
	}
	return Problem{File: file, Line: row, Message: err.Error()}
}

// renderKeys maps render's field names to the campaign keys they come from.
var renderKeys = map[string]string{"subject": "subject", "name": "recipients.name", "body": "body",
	"text": "body.text", "layout": "body.layout", "attachment": "attachments", "unsubscribe": "unsubscribe",
	"address": "from", "dkim": "dkim"}

// configProblem places an error of render.New (a bad template, say) on the
// campaign key it comes from. render.New words its errors "field: cause";
// a *render.FieldError is used as such, otherwise the known field prefix is
// read (presentation only: an unknown prefix just prints without a line).
func (c *Campaign) configProblem(err error) Problem {
	field, msg := "", err.Error()
	var fe *render.FieldError
	if errors.As(err, &fe) {
		field, msg = fe.Field, fe.Err.Error()
	} else if f, rest, ok := strings.Cut(msg, ": "); ok {
		field, msg = f, rest
	}
	key, ok := renderKeys[field]
	if h, isHeader := strings.CutPrefix(field, "header "); isHeader {
		key, ok = "headers."+h, true
	}
	if !ok {
		return Problem{File: c.base(), Message: err.Error()}
	}
	return Problem{File: c.base(), Line: c.line(key), Field: key, Message: msg}
}

// base is the campaign file's name, as problems print it.
func (c *Campaign) base() string {
	if c.path == "" {
		return DefaultFile
	}
	return filepath.Base(c.path)
}
