package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

const (
	typeBegin = "begin"
	typeRun   = "run"
)

// headerLine is how a Header is written: the "begin" record opens the
// file, a "run" record marks each later run.
type headerLine struct {
	Type        string            `json:"type"`
	Time        time.Time         `json:"time"`
	Campaign    string            `json:"campaign,omitempty"`
	Fingerprint string            `json:"fingerprint,omitempty"`
	Files       map[string]string `json:"files,omitempty"`
	Command     string            `json:"command,omitempty"`
	Version     int               `json:"version"`
}

func headerRecord(typ string, h Header) headerLine {
	return headerLine{
		Type:        typ,
		Time:        h.Time,
		Campaign:    h.Campaign,
		Fingerprint: h.Fingerprint,
		Files:       h.Files,
		Command:     h.Command,
		Version:     Version,
	}
}

// record is any line of the journal: a header when Type is set, an Entry
// otherwise. Entry is embedded so that one decode serves both.
type record struct {
	Type        string            `json:"type"`
	Version     int               `json:"version"`
	Campaign    string            `json:"campaign"`
	Fingerprint string            `json:"fingerprint"`
	Files       map[string]string `json:"files"`
	Command     string            `json:"command"`
	Entry
}

func (r *record) header() Header {
	return Header{Time: r.Time, Campaign: r.Campaign, Fingerprint: r.Fingerprint, Files: r.Files, Command: r.Command}
}

// tailInfo describes the end of the data. good is the offset just after
// the last newline; data is where the written bytes end: the first NUL
// byte, or size when there is none; size is the length read. Bytes between
// good and data are a line torn by a crash, and valid says whether they
// still hold a complete record; bytes from data to size are NUL, zeros
// that Journal.grow wrote ahead of the data and Close did not trim
// (a crash, or a run still writing).
type tailInfo struct {
	size, good, data int64
	valid            bool
}

// scanner reads journal lines and checks that they make sense in order.
type scanner struct {
	path  string
	line  int
	begun bool
}

// scan calls fn for every record of r in order. A line that does not parse
// is an error naming it, except the torn tail: the last line when it has
// no newline, or the bytes before the first NUL. A crash tore it, and it
// is only passed to fn if it is a complete record. The first NUL byte ends
// the data, since JSON never holds one raw and the journal writes its
// batches into zeros (see Journal.grow); everything after it must be NUL
// too, else the file is corrupt and the error names the line where the
// zeros start. r is read at offsets, never through a file position, so
// Open can scan the file it then writes with WriteAt.
func (s *scanner) scan(r io.ReaderAt, fn func(*record) error) (tailInfo, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(r, 0, math.MaxInt64), 64<<10)
	var t tailInfo
	var long []byte // a line longer than the buffer
	for {
		chunk, err := br.ReadSlice('\n')
		if i := bytes.IndexByte(chunk, 0); i >= 0 {
			line := append(long, chunk[:i]...) // a copy: br reuses chunk
			t.data = t.size + int64(i)
			if err := s.zeros(r, br, chunk[i:], &t); err != nil {
				return t, err
			}
			return t, s.tail(line, &t, fn)
		}
		t.size += int64(len(chunk))
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, chunk...)
			continue
		}
		line := chunk
		if long != nil {
			line = append(long, chunk...)
			long = nil
		}
		if err == io.EOF {
			t.data = t.size
			return t, s.tail(line, &t, fn)
		}
		if err != nil {
			return t, fmt.Errorf("read journal %s: %w", s.path, err)
		}
		s.line++
		t.good = t.size
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var rec record
		if err := s.decode(line, &rec); err != nil {
			return t, fmt.Errorf("%s:%d: corrupt journal line: %w", s.path, s.line, err)
		}
		if err := fn(&rec); err != nil {
			return t, err
		}
	}
}

// tail passes the torn last line to fn if it is a complete record.
func (s *scanner) tail(line []byte, t *tailInfo, fn func(*record) error) error {
	if len(line) == 0 {
		return nil
	}
	s.line++
	var rec record
	if s.decode(line, &rec) != nil {
		return nil
	}
	t.valid = true
	return fn(&rec)
}

// zeros reads the rest of the file from t.data, p being what br already
// returned of it, and checks that it is all NUL, setting t.size.
//
// A reader without the lock (mailrun status during a send) can see zeros
// at t.data and then a batch that the writer put there meanwhile, further
// on; so before calling non-zero bytes corruption, zeros reads t.data
// again: if it is no longer NUL, a writer is appending and the data read
// so far is a consistent snapshot that ends at t.data. Under the lock
// (Open) nobody writes, and the bytes stay corrupt.
func (s *scanner) zeros(r io.ReaderAt, br *bufio.Reader, p []byte, t *tailInfo) error {
	t.size = t.data
	for {
		if k := len(p) - len(bytes.TrimLeft(p, "\x00")); k < len(p) {
			return s.afterZeros(r, t, t.size+int64(k))
		}
		t.size += int64(len(p))
		var err error
		p, err = br.Peek(br.Size())
		if len(p) == 0 {
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read journal %s: %w", s.path, err)
			}
		}
		if _, derr := br.Discard(len(p)); derr != nil {
			return fmt.Errorf("read journal %s: %w", s.path, derr)
		}
	}
}

// afterZeros decides what a non-zero byte at off, after the NUL at
// t.data, means (see zeros).
func (s *scanner) afterZeros(r io.ReaderAt, t *tailInfo, off int64) error {
	var b [1]byte
	n, err := r.ReadAt(b[:], t.data)
	if n == 1 {
		err = nil // io.ReaderAt may say io.EOF with the last byte
	}
	if errors.Is(err, io.EOF) || (err == nil && b[0] != 0) {
		// Written (or cut back by a failed batch) since we read it.
		t.size = t.data
		return nil
	}
	if err != nil {
		return fmt.Errorf("read journal %s: %w", s.path, err)
	}
	return fmt.Errorf("%s:%d: corrupt journal line: data at offset %d after NUL bytes from offset %d", s.path, s.line+1, off, t.data)
}

// decode parses one line and checks it against what came before.
func (s *scanner) decode(line []byte, rec *record) error {
	if err := json.Unmarshal(line, rec); err != nil {
		return err
	}
	switch rec.Type {
	case typeBegin:
		if s.begun {
			return errors.New("second begin record")
		}
		if rec.Version > Version {
			return fmt.Errorf("journal version %d is newer than this mailrun understands (%d)", rec.Version, Version)
		}
		s.begun = true
		return nil
	case typeRun:
	case "":
		if strings.TrimSpace(rec.Email) == "" {
			return errors.New("entry without an email")
		}
		if !rec.Status.Valid() {
			return fmt.Errorf("unknown status %q", rec.Status)
		}
	default:
		return fmt.Errorf("unknown record type %q", rec.Type)
	}
	if !s.begun {
		return errors.New("journal does not start with a begin record")
	}
	return nil
}

// Read calls fn for every entry of the journal at path, in file order,
// without taking the lock, so that `mailrun status` can watch a running
// send. Entries are raw: an intent without an outcome still reads as
// Sending. A torn last line is skipped; a corrupt line before it is an
// error naming the line. An error from fn stops the reading and is
// returned as is.
func Read(path string, fn func(Entry) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open journal: %w", err)
	}
	defer f.Close()
	s := scanner{path: path}
	_, err = s.scan(f, func(r *record) error {
		if r.Type != "" {
			return nil
		}
		return fn(r.Entry)
	})
	return err
}

// Report is the state of a journal for `mailrun status` and `mailrun
// report`.
type Report struct {
	// Began is the first run's header; Runs are the later ones, in order.
	Began Header
	Runs  []Header
	// Recipients holds the last entry of every recipient, sorted by row
	// and then address. An intent without an outcome reads as Unknown.
	Recipients []Entry
	Summary    Summary
}

// Latest reads the journal at path, without taking the lock, into a
// Report. It holds one entry per recipient in memory, which a report needs
// anyway; a send uses Open, which keeps one byte and a hash per recipient.
// key decides which addresses are one recipient, as for Open.
func Latest(path string, key Key) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	defer f.Close()
	rep := &Report{}
	last := make(map[string]int) // address key -> index in Recipients
	s := scanner{path: path}
	_, err = s.scan(f, func(r *record) error {
		switch r.Type {
		case typeBegin:
			rep.Began = r.header()
		case typeRun:
			rep.Runs = append(rep.Runs, r.header())
		default:
			k := key.of(r.Email)
			if i, ok := last[k]; ok {
				if r.Status != Skipped { // see Skipped
					rep.Recipients[i] = r.Entry
				}
			} else {
				last[k] = len(rep.Recipients)
				rep.Recipients = append(rep.Recipients, r.Entry)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range rep.Recipients {
		e := &rep.Recipients[i]
		if e.Status == Sending {
			e.Status = Unknown
		}
		rep.Summary.add(e.Status, 1)
	}
	slices.SortStableFunc(rep.Recipients, func(a, b Entry) int {
		if a.Row != b.Row {
			return a.Row - b.Row
		}
		return strings.Compare(key.of(a.Email), key.of(b.Email))
	})
	return rep, nil
}
