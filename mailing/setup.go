package mailing

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/journal"
	"github.com/mailrun/mailrun/render"
)

// newRenderer builds the renderer of c; tweak, when set, changes the
// render.Config first (the test send's subject).
func newRenderer(c *campaign.Campaign, tweak func(*render.Config)) (*render.Renderer, error) {
	rc, err := c.RenderConfig()
	if err != nil {
		return nil, err
	}
	if tweak != nil {
		tweak(&rc)
	}
	return render.New(rc)
}

// JournalPath is where the journal of c lives unless a run names another.
func JournalPath(c *campaign.Campaign) string {
	return filepath.Join(c.Dir(), c.Name+".journal")
}

// Fingerprint identifies the content of the campaign: the campaign file,
// the recipient list and the body templates. A journal keeps the
// fingerprint it began with, so a rerun notices edited campaign files. The
// files are streamed through the hash: a large list costs no memory.
func Fingerprint(c *campaign.Campaign) (string, error) {
	fp, _, err := fingerprints(c)
	return fp, err
}

// fingerprints is Fingerprint and a hash per file, which a journal keeps
// too so that a rerun can name the files that changed.
func fingerprints(c *campaign.Campaign) (string, map[string]string, error) {
	root, err := os.OpenRoot(c.Dir())
	if err != nil {
		return "", nil, fmt.Errorf("fingerprint: %w", err)
	}
	defer root.Close()
	h := sha256.New()
	files := map[string]string{}
	for _, name := range []string{filepath.Base(c.Path()), c.Recipients.File, c.Body.Markdown, c.Body.HTML, c.Body.Text, c.Body.Layout} {
		if name == "" {
			continue
		}
		f, err := root.Open(name)
		if err != nil {
			return "", nil, fmt.Errorf("fingerprint: %w", err)
		}
		fmt.Fprintf(h, "%s\n", name)
		one := sha256.New()
		n, err := io.Copy(io.MultiWriter(h, one), f)
		f.Close()
		if err != nil {
			return "", nil, fmt.Errorf("fingerprint: %s: %w", name, err)
		}
		fmt.Fprintf(h, "\n%d\n", n)
		files[name] = hex.EncodeToString(one.Sum(nil))[:16]
	}
	return hex.EncodeToString(h.Sum(nil))[:32], files, nil
}

// changedFiles names the files whose hash differs from the journal's
// beginning, sorted; nil when the journal kept no hashes (an older one).
func changedFiles(began journal.Header, now map[string]string) []string {
	if began.Files == nil {
		return nil
	}
	var out []string
	for name, sum := range now {
		if began.Files[name] != sum {
			out = append(out, name)
		}
	}
	for name := range began.Files {
		if _, ok := now[name]; !ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Peek reads the journal at path without its lock (journal.Peek),
// recipients told apart by campaign.AddrKey as the send does.
func Peek(path string) (*journal.Snapshot, error) {
	return journal.Peek(path, campaign.AddrKey)
}

// Latest reads the journal at path as report shows it: one entry per
// recipient, recipients told apart by campaign.AddrKey as the send did.
func Latest(path string) (*journal.Report, error) {
	return journal.Latest(path, campaign.AddrKey)
}

// WriteReport writes every recipient's last outcome from the journal at
// path as "csv" or "json" (see journal.WriteReport), recipients told apart
// by campaign.AddrKey.
func WriteReport(w io.Writer, path, format string) error {
	return journal.WriteReport(w, path, format, campaign.AddrKey)
}

// StaticSize is the encoded size of the attachments and images every
// message of c carries (render.Renderer.StaticSize): what a caller sizing
// its memory for the messages in flight needs to know.
func StaticSize(c *campaign.Campaign) (int64, error) {
	rd, err := newRenderer(c, nil)
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	return rd.StaticSize(), nil
}
