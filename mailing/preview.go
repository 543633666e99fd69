package mailing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mailrun/mailrun/campaign"
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
	eml := sender.Dir{Path: dir}
	write := func(name string, msg *render.Message) error {
		if err := eml.Write(name, msg.Data); err != nil {
			return fmt.Errorf("preview: %w", err)
		}
		return nil
	}
	// Without a limit every worker writes the files it renders: creating
	// files costs as much as rendering them. With a limit, writing stays
	// in CSV order so that exactly the first rows are written.
	var f walkFuncs
	if limit <= 0 {
		f.sink = func(r *row) error {
			err := write(emlName(r.rec.Row, r.rec.Email), r.msg)
			r.msg = nil
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
		if f.sink == nil {
			if err := write(emlName(r.rec.Row, r.rec.Email), r.msg); err != nil {
				return err
			}
		}
		return count()
	}
	f.group = func(msg *render.Message) error {
		if err := write("group.eml", msg); err != nil {
			return err
		}
		return count()
	}
	err := walk(ctx, c, &tally{out: out, rep: rep}, f)
	rep.Elapsed = time.Since(start)
	if err != nil {
		return rep, err
	}
	rate := 0.0
	if s := rep.Elapsed.Seconds(); s > 0 {
		rate = float64(rep.Written) / s
	}
	_, err = fmt.Fprintf(out, "preview: %s written to %s in %s (%.0f msg/s), %s, %s, %d suppressed\n",
		plural(rep.Written, "message"), dir, rep.Elapsed.Round(time.Millisecond), rate,
		plural(rep.Errors, "error"), plural(rep.Warnings, "warning"), rep.Suppressed)
	return rep, err
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
