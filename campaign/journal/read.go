package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	Type        string    `json:"type"`
	Time        time.Time `json:"time"`
	Campaign    string    `json:"campaign,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	Command     string    `json:"command,omitempty"`
	Version     int       `json:"version"`
}

func headerRecord(typ string, h Header) headerLine {
	return headerLine{
		Type:        typ,
		Time:        h.Time,
		Campaign:    h.Campaign,
		Fingerprint: h.Fingerprint,
		Command:     h.Command,
		Version:     Version,
	}
}

// record is any line of the journal: a header when Type is set, an Entry
// otherwise. Entry is embedded so that one decode serves both.
type record struct {
	Type        string `json:"type"`
	Version     int    `json:"version"`
	Campaign    string `json:"campaign"`
	Fingerprint string `json:"fingerprint"`
	Command     string `json:"command"`
	Entry
}

func (r *record) header() Header {
	return Header{Time: r.Time, Campaign: r.Campaign, Fingerprint: r.Fingerprint, Command: r.Command}
}

// tailInfo describes the end of the file: good is the offset just after the
// last newline, size the file's length; bytes between them are a line torn
// by a crash, and valid says whether they still hold a complete record.
type tailInfo struct {
	size, good int64
	valid      bool
}

// scanner reads journal lines and checks that they make sense in order.
type scanner struct {
	path  string
	line  int
	begun bool
}

// scan calls fn for every record of r in order. A line that does not parse
// is an error naming it, except the last one when it has no newline: a
// crash tore it, and it is only passed to fn if it is a complete record.
func (s *scanner) scan(r io.Reader, fn func(*record) error) (tailInfo, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var t tailInfo
	var long []byte // a line longer than the buffer
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, chunk...)
			t.size += int64(len(chunk))
			continue
		}
		line := chunk
		if long != nil {
			line = append(long, chunk...)
			long = nil
		}
		t.size += int64(len(chunk))
		if err == io.EOF {
			if len(line) > 0 {
				s.line++
				var rec record
				if s.decode(line, &rec) == nil {
					t.valid = true
					if ferr := fn(&rec); ferr != nil {
						return t, ferr
					}
				}
			}
			return t, nil
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
func Latest(path string) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	defer f.Close()
	rep := &Report{}
	last := make(map[string]int) // normalised address -> index in Recipients
	s := scanner{path: path}
	_, err = s.scan(f, func(r *record) error {
		switch r.Type {
		case typeBegin:
			rep.Began = r.header()
		case typeRun:
			rep.Runs = append(rep.Runs, r.header())
		default:
			k := Normalize(r.Email)
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
		return strings.Compare(Normalize(a.Email), Normalize(b.Email))
	})
	return rep, nil
}
