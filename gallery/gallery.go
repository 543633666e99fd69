package gallery

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// PartsDir is the folder, inside the gallery's, that holds the inline
// images and is shared by every page: a logo sent to 100,000 recipients is
// written once, named by its content.
const PartsDir = "parts"

// Entry is one line of the index: a message, or a row that has none
// because of its problems.
type Entry struct {
	// Row is the CSV row (0 for a group message).
	Row int
	// Address and Name are the recipient's, from the To header; the
	// caller may set Address from its list instead.
	Address, Name string
	// Subject is the decoded Subject header.
	Subject string
	// Size is the message's size in bytes.
	Size int
	// Attachments are the attachments' file names.
	Attachments []string
	// Problems are the row's problems, one line each, as the caller
	// printed them.
	Problems []string
	// EML and Page are the file names of the message and its page in the
	// gallery's folder; both are "" for a row without a message.
	EML, Page string
}

// Gallery writes the static pages of one preview into a folder: a page per
// message while the messages are written (Page, safe for concurrent use),
// and index.html at the end (Add in row order, then Close).
type Gallery struct {
	dir      string
	parts    sync.Map // content name -> *partEntry
	partsDir sync.Once
	partsErr error

	rows  *os.File // the index's rows, streamed so memory stays flat
	buf   *bufio.Writer
	notes []string
	n     int

	// A gallery from Collect has no dir and keeps up to max entries.
	entries []Entry
	max     int
}

// New prepares a gallery in dir, which must exist; it writes nothing there
// but a temporary file until a page is written. The error is the file
// system's. Close or Abort must follow.
func New(dir string) (*Gallery, error) {
	f, err := os.CreateTemp(dir, ".index-rows-*")
	if err != nil {
		return nil, fmt.Errorf("gallery: %w", err)
	}
	return &Gallery{dir: dir, rows: f, buf: bufio.NewWriterSize(f, 64<<10)}, nil
}

// Collect returns a gallery without a folder, for a server that renders
// each page on request (mailrun serve): Page only parses, Add keeps the
// first max entries in memory and counts the others, Note keeps the notes,
// and Index returns them all. Close and Abort do nothing.
func Collect(max int) *Gallery {
	return &Gallery{max: max}
}

// Index returns what a gallery from Collect gathered, for WriteIndex.
func (g *Gallery) Index() Index {
	return Index{Notes: g.notes, Entries: g.entries, Count: g.n}
}

// PageName is the page's file name for a message file: its name with
// ".html" for ".eml".
func PageName(eml string) string {
	return strings.TrimSuffix(eml, ".eml") + ".html"
}

// Page parses msg (the bytes of the file eml in the gallery's folder) once,
// writes its inline parts under PartsDir and its page, and returns its
// Entry for the index. Every file is written to a temporary name and
// renamed. On a gallery from Collect it only parses msg and returns the
// Entry: the pages are rendered on request. The error is a message that
// cannot be parsed or a write error.
func (g *Gallery) Page(row int, eml string, msg []byte) (Entry, error) {
	m, err := Parse(msg)
	if err != nil {
		return Entry{}, fmt.Errorf("gallery %s: %w", eml, err)
	}
	e := m.Entry(row, eml)
	if g.dir == "" {
		return e, nil
	}
	var werr error
	links := Links{Index: "./index.html", EML: href(eml), Part: func(_ int, pt Part) string {
		name, err := g.writePart(pt)
		werr = cmp.Or(werr, err)
		return name
	}}
	var b bytes.Buffer
	if err := WritePage(&b, e, m, links); err != nil {
		return Entry{}, fmt.Errorf("gallery %s: %w", eml, err)
	}
	if werr != nil {
		return Entry{}, fmt.Errorf("gallery %s: %w", eml, werr)
	}
	if err := writeFile(g.dir, e.Page, b.Bytes()); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// partEntry makes concurrent pages write a shared part once.
type partEntry struct {
	once sync.Once
	err  error
}

// writePart writes an inline part under PartsDir, named by a hash of its
// type and content, and returns the name relative to the gallery's folder.
func (g *Gallery) writePart(pt Part) (string, error) {
	sum := sha256.Sum256(append([]byte(pt.Type+"\x00"), pt.Data...))
	// The extension comes from an allowed image type only, never from the
	// part's name or another type: a static server would serve a part
	// named x.html, or typed text/html, as a page of the gallery's origin.
	ext := ".bin"
	if e, ok := ImageType(pt.Type); ok {
		ext = e
	}
	name := hex.EncodeToString(sum[:12]) + ext
	g.partsDir.Do(func() { g.partsErr = os.MkdirAll(filepath.Join(g.dir, PartsDir), 0o755) })
	if g.partsErr != nil {
		return "", fmt.Errorf("gallery: %w", g.partsErr)
	}
	v, _ := g.parts.LoadOrStore(name, &partEntry{})
	pe := v.(*partEntry)
	pe.once.Do(func() { pe.err = writeFile(filepath.Join(g.dir, PartsDir), name, pt.Data) })
	return PartsDir + "/" + name, pe.err
}

// imageTypes are the image types a browser shows and that carry no
// script, with the extension a part of that type is written with.
var imageTypes = map[string]string{
	"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp", "image/avif": ".avif",
}

// ImageType reports whether ctype (parameters allowed) is an image type a
// page may show as it is, and the extension its file gets. Any other type,
// SVG included (it can carry script), is offered as a download only: the
// one rule of the gallery's files and of mailrun serve's parts.
func ImageType(ctype string) (ext string, ok bool) {
	mt, _, err := mime.ParseMediaType(ctype)
	if err != nil {
		return "", false
	}
	ext, ok = imageTypes[mt]
	return ext, ok
}

// Add appends e to the index. Entries must come in row order; Add is not
// safe for concurrent use. The error is a write error.
func (g *Gallery) Add(e Entry) error {
	g.n++
	if g.dir == "" {
		if len(g.entries) < g.max {
			g.entries = append(g.entries, e)
		}
		return nil
	}
	if e.Page != "" {
		e.Page = href(e.Page)
	}
	return rowTmpl.Execute(g.buf, e)
}

// Note adds a problem that belongs to no row (the campaign file's, or a
// summary of rows that repeat a problem) to the top of the index.
func (g *Gallery) Note(line string) {
	g.notes = append(g.notes, line)
}

// Close writes index.html (to a temporary name, then renamed) and removes
// the gallery's temporary files. The error is a write error.
func (g *Gallery) Close() error {
	if g.dir == "" {
		return nil
	}
	defer g.Abort()
	if err := g.buf.Flush(); err != nil {
		return fmt.Errorf("gallery: %w", err)
	}
	if _, err := g.rows.Seek(0, 0); err != nil {
		return fmt.Errorf("gallery: %w", err)
	}
	return writeWith(g.dir, "index.html", func(w *bufio.Writer) error {
		if err := indexHead.Execute(w, indexView{Notes: g.notes, Count: g.n, Listed: g.n}); err != nil {
			return err
		}
		if _, err := w.ReadFrom(g.rows); err != nil {
			return err
		}
		return indexFoot.Execute(w, nil)
	})
}

// Abort removes the gallery's temporary files without writing the index;
// pages already written stay. It may follow Close.
func (g *Gallery) Abort() {
	if g.rows != nil {
		_ = g.rows.Close()
		_ = os.Remove(g.rows.Name())
		g.rows = nil
	}
}

// href makes a file name a relative URL that no browser reads as a scheme.
func href(name string) string {
	return "./" + url.PathEscape(name)
}

// writeFile writes data to dir/name through a temporary file and a rename,
// so that a crash leaves either the old file or the new one.
func writeFile(dir, name string, data []byte) error {
	return writeWith(dir, name, func(w *bufio.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

func writeWith(dir, name string, fill func(*bufio.Writer) error) error {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(dir, "."+name+".tmp-"+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("gallery write %s: %w", name, err)
	}
	w := bufio.NewWriterSize(f, 32<<10)
	werr := fill(w)
	if werr == nil {
		werr = w.Flush()
	}
	if err := errors.Join(werr, f.Close()); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("gallery write %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("gallery write %s: %w", name, err)
	}
	return nil
}
