package mailing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/gallery"
	"github.com/mailrun/mailrun/render"
	"github.com/mailrun/mailrun/sender"
)

// Preview renders the campaign and writes one .eml file per recipient into
// dir (created if needed), named "%05d-<address>.eml" by CSV row, or one
// "group.eml" in group mode. Each file is written to a temporary name in dir
// and renamed, so dir never holds a partial message. A limit above zero
// stops after that many files.
//
// Rows with problems are printed to out (as Check prints them) and skipped;
// the others are written. Rendering runs on GOMAXPROCS workers, writing stays
// in CSV order, and memory does not grow with the number of recipients. A
// final line gives the count, the elapsed time and messages per second.
// The error is non-nil when Preview could not go on (unreadable CSV, write
// error, or ctx.Err() when cancelled: files already written stay).
func Preview(ctx context.Context, c *campaign.Campaign, dir string, limit int, out io.Writer) (*Report, error) {
	start := time.Now()
	rep := &Report{}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return rep, fmt.Errorf("preview: %w", err)
	}
	gal, err := gallery.New(dir)
	if err != nil {
		return rep, fmt.Errorf("preview: %w", err)
	}
	defer gal.Abort()
	ix := &galleryIndex{g: gal, prefix: c.File(c.Recipients.File) + ":", out: out, rows: map[int][]string{}}
	eml := sender.Dir{Path: dir}
	// write writes the message and its gallery page, parsing it once.
	write := func(row int, name string, msg *render.Message) (gallery.Entry, error) {
		if err := eml.Write(name, msg.Data); err != nil {
			return gallery.Entry{}, fmt.Errorf("preview: %w", err)
		}
		e, err := gal.Page(row, name, msg.Data)
		if err != nil {
			return e, fmt.Errorf("preview: %w", err)
		}
		return e, nil
	}
	// Without a limit every worker writes the files it renders: creating
	// files costs as much as rendering them. With a limit, writing stays
	// in CSV order so that exactly the first rows are written.
	var f walkFuncs
	var pages sync.Map // row -> gallery.Entry, from the sink to ok
	if limit <= 0 {
		f.sink = func(r *row) error {
			e, err := write(r.rec.Row, emlName(r.rec.Row, r.rec.Email), r.msg)
			r.msg = nil
			pages.Store(r.rec.Row, e)
			return err
		}
	}
	count := func() error {
		rep.Written++
		if limit > 0 && rep.Written >= limit {
			return errStop
		}
		return nil
	}
	f.ok = func(r *row) error {
		var e gallery.Entry
		if f.sink == nil {
			var err error
			if e, err = write(r.rec.Row, emlName(r.rec.Row, r.rec.Email), r.msg); err != nil {
				return err
			}
		} else if v, ok := pages.LoadAndDelete(r.rec.Row); ok {
			e = v.(gallery.Entry)
		}
		e.Address = r.rec.Email
		if err := ix.add(e); err != nil {
			return err
		}
		return count()
	}
	f.group = func(msg *render.Message) error {
		e, err := write(0, "group.eml", msg)
		if err != nil {
			return err
		}
		if err := ix.add(e); err != nil {
			return err
		}
		return count()
	}
	err = walk(ctx, c, &tally{out: ix, rep: rep}, f)
	rep.Elapsed = time.Since(start)
	if err == nil {
		if cerr := ix.close(); err == nil && cerr != nil {
			err = fmt.Errorf("preview: %w", cerr)
		}
	}
	if err != nil {
		return rep, err
	}
	rate := 0.0
	if s := rep.Elapsed.Seconds(); s > 0 {
		rate = float64(rep.Written) / s
	}
	_, err = fmt.Fprintf(out, "preview: %s written to %s in %s (%.0f msg/s), %s, %s, %d suppressed; gallery: %s\n",
		plural(rep.Written, "message"), dir, rep.Elapsed.Round(time.Millisecond), rate,
		plural(rep.Errors, "error"), plural(rep.Warnings, "warning"), rep.Suppressed, filepath.Join(dir, "index.html"))
	return rep, err
}

// galleryIndex passes what preview prints on to out and gives the gallery
// the same lines: a line on a CSV row ("recipients.csv:12: ...") goes with
// that row, any other (the campaign file's problems, the summaries of
// repeated problems) to the top of the index. Preview prints a row's lines
// before the next row's, so the rows still pending are few.
type galleryIndex struct {
	g      *gallery.Gallery
	prefix string // the list's name and a colon, as problems start
	out    io.Writer
	rows   map[int][]string // printed lines of rows not yet added
	last   int              // the last row added
}

// Write takes whole lines, as tally prints them.
func (x *galleryIndex) Write(p []byte) (int, error) {
	for line := range strings.Lines(string(p)) {
		line = strings.TrimRight(line, "\r\n")
		rest, onList := strings.CutPrefix(line, x.prefix)
		n, _, _ := strings.Cut(rest, ":")
		row, err := strconv.Atoi(n)
		if onList && err == nil && row > x.last && !strings.Contains(line, " (the same in ") {
			x.rows[row] = append(x.rows[row], line)
		} else {
			x.g.Note(line)
		}
	}
	return x.out.Write(p)
}

// add adds the rows with only problems before e, then e with its lines.
func (x *galleryIndex) add(e gallery.Entry) error {
	if err := x.flush(e.Row); err != nil {
		return err
	}
	e.Problems = x.rows[e.Row]
	delete(x.rows, e.Row)
	if e.Row > x.last {
		x.last = e.Row
	}
	return x.g.Add(e)
}

// flush adds the pending rows before row (all of them when row is 0).
func (x *galleryIndex) flush(row int) error {
	var rows []int
	for r := range x.rows {
		if row == 0 || r < row {
			rows = append(rows, r)
		}
	}
	slices.Sort(rows)
	for _, r := range rows {
		if err := x.g.Add(gallery.Entry{Row: r, Problems: x.rows[r]}); err != nil {
			return err
		}
		delete(x.rows, r)
		x.last = r
	}
	return nil
}

func (x *galleryIndex) close() error {
	if err := x.flush(0); err != nil {
		return err
	}
	return x.g.Close()
}

// emlName names a preview file by row and address. The address keeps
// letters, digits and ".@+-_"; anything else, including a path separator,
// becomes "_", so the name stays inside the folder on every file system.
func emlName(row int, addr string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%05d-", row)
	// A legal address may be 254 bytes; with the row and the temporary
	// suffix that passes the 255-byte limit of a file name. Long ones keep
	// a readable start and a hash of the whole.
	if len(addr) > 150 {
		sum := sha256.Sum256([]byte(addr))
		addr = addr[:120] + "~" + hex.EncodeToString(sum[:6])
	}
	for _, r := range addr {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune(".@+-_", r):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	b.WriteString(".eml")
	return b.String()
}
