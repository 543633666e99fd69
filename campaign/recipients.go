package campaign

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"net/mail"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mailrun/mailrun/render"
)

// Recipients streams the recipient CSV one row at a time: memory does not
// grow with the number of rows, except for the set of seen addresses (12 to
// 24 bytes per unique address) that finds duplicates.
//
// The file has a header row (line 1), is UTF-8 with or without a BOM, uses
// CRLF or LF, and may quote fields (RFC 4180). A row is named by the file
// line where its record starts, so a quoted field spanning lines shifts the
// rows after it exactly as an editor shows them.
type Recipients struct {
	file     string // name in problems, relative to the campaign folder
	closer   io.Closer
	csv      *csv.Reader
	header   []string
	emailCol int
	seen     addrSet
}

// OpenRecipients opens the campaign's CSV inside the campaign folder and
// reads its header row. Header problems (missing row, empty, duplicate or
// invalid UTF-8 column names, no email column) are returned as Problems;
// other errors are I/O errors. The caller must Close the Recipients.
func OpenRecipients(c *Campaign) (*Recipients, error) {
	root, err := os.OpenRoot(c.dir)
	if err != nil {
		return nil, fmt.Errorf("open recipients: %w", err)
	}
	defer root.Close()
	f, err := root.Open(c.Recipients.File)
	if err != nil {
		return nil, Problems{{File: c.Recipients.File, Field: "recipients", Message: fileErr(c.Recipients.File, err)}}
	}
	r, err := newRecipients(f, c.Recipients.File, c.Recipients.Email)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer = f
	return r, nil
}

// newRecipients reads the header from in; file names in problems.
func newRecipients(in io.Reader, file, emailColumn string) (*Recipients, error) {
	br := bufio.NewReaderSize(in, 64<<10)
	if bom, err := br.Peek(3); err == nil && string(bom) == "\uFEFF" {
		br.Discard(3)
	}
	r := &Recipients{file: file, csv: csv.NewReader(br), emailCol: -1}
	r.csv.FieldsPerRecord = -1 // a wrong count is a row problem, checked by Next
	problem := func(field, format string, args ...any) error {
		return Problems{{File: file, Line: 1, Field: field, Message: fmt.Sprintf(format, args...)}}
	}
	header, err := r.csv.Read()
	switch {
	case errors.Is(err, io.EOF):
		return nil, problem("", "no header row: the first line must name the columns, e.g. email,first_name")
	case err != nil:
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, problem("", "header: %v", pe.Err)
		}
		return nil, fmt.Errorf("read recipients: %w", err)
	}
	if line, _ := r.csv.FieldPos(0); line != 1 {
		return nil, Problems{{File: file, Line: line, Message: "the header row must be line 1"}}
	}
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		switch {
		case !utf8.ValidString(h):
			return nil, problem("", "column %d: invalid UTF-8", i+1)
		case h == "":
			return nil, problem("", "column %d has no name", i+1)
		case seen[h]:
			return nil, problem(h, "column named twice")
		}
		seen[h] = true
		header[i] = h
		if h == emailColumn {
			r.emailCol = i
		}
	}
	if r.emailCol < 0 {
		return nil, problem(emailColumn, "no such column in the header (set recipients.email to the column holding the address)")
	}
	r.header = header
	return r, nil
}

// Header returns the column names.
func (r *Recipients) Header() []string { return r.header }

// Next returns the next recipient.
//
// It returns io.EOF at the end. A row that cannot be used gives its
// Recipient (Row set, Email when known) and a Problems error: wrong field
// count, invalid UTF-8 or NUL in a value, an empty or invalid address
// (see CheckAddr), or (as a warning) a duplicate of an earlier row in any letter
// case. Such a row must be skipped and Next called again. Any other error is
// fatal.
func (r *Recipients) Next() (render.Recipient, error) {
	rec, err := r.csv.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return render.Recipient{}, io.EOF
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return render.Recipient{Row: pe.StartLine}, Problems{{File: r.file, Line: pe.StartLine,
				Message: fmt.Sprintf("invalid CSV at line %d, column %d: %v", pe.Line, pe.Column, pe.Err)}}
		}
		return render.Recipient{}, fmt.Errorf("read recipients: %w", err)
	}
	row, _ := r.csv.FieldPos(0)
	out := render.Recipient{Row: row}
	if len(rec) != len(r.header) {
		return out, Problems{{File: r.file, Line: row,
			Message: fmt.Sprintf("%d fields, but the header has %d columns", len(rec), len(r.header))}}
	}
	var ps Problems
	fields := make(map[string]string, len(rec))
	for i, v := range rec {
		name := r.header[i]
		switch {
		case !utf8.ValidString(v):
			ps = append(ps, Problem{File: r.file, Line: row, Field: name, Message: "invalid UTF-8"})
		case strings.IndexByte(v, 0) >= 0:
			ps = append(ps, Problem{File: r.file, Line: row, Field: name, Message: "NUL in the value"})
		}
		// A line break is text in a body (a postal address); render refuses
		// it where it would reach a header (subject, name, headers,
		// unsubscribe), naming the template.
		fields[name] = v
	}
	email := strings.TrimSpace(rec[r.emailCol])
	fields[r.header[r.emailCol]] = email
	out.Fields = fields
	out.Email = email
	if len(ps) == 0 {
		if msg := checkAddr(email); msg != "" {
			ps = append(ps, Problem{File: r.file, Line: row, Field: r.header[r.emailCol], Message: msg})
		}
	}
	if len(ps) > 0 {
		return out, ps
	}
	if prev, dup := r.seen.add(AddrKey(email), row); dup {
		return out, Problems{{File: r.file, Line: row, Field: r.header[r.emailCol], Warning: true,
			Message: "duplicate of row " + strconv.Itoa(prev) + ", skipped"}}
	}
	return out, nil
}

// checkAddr accepts only a bare addr-spec (RFC 5322 section 3.4.1), as the
// envelope needs: no display name, no angle brackets, no comments; and only
// what a relay can route and a reader cannot be fooled by: no invisible or
// direction-control characters, at most 64 octets before the @ and 254 in
// all (RFC 5321 section 4.5.3.1), and domain labels of letters, digits and
// inner hyphens (RFC 1035 section 2.3.1, RFC 5890 for non-ASCII letters).
func checkAddr(s string) string {
	if s == "" {
		return "empty address"
	}
	if r, ok := invisible(s); ok {
		return fmt.Sprintf("invisible or direction-control character %U in %+q", r, s)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "invalid address " + strconv.Quote(s) + ": " + strings.TrimPrefix(err.Error(), "mail: ")
	}
	if a.Name != "" || a.Address != s {
		return "want a bare address like ann@example.org, got " + strconv.Quote(s)
	}
	at := strings.LastIndexByte(s, '@')
	local, domain := s[:at], s[at+1:]
	switch {
	case len(local) > 64:
		return fmt.Sprintf("the part before @ has %d octets, more than 64 (RFC 5321 section 4.5.3.1)", len(local))
	case len(s) > 254:
		return fmt.Sprintf("%d octets, more than 254 (RFC 5321 section 4.5.3.1)", len(s))
	}
	if msg := checkDomain(domain); msg != "" {
		return "domain " + strconv.Quote(domain) + ": " + msg
	}
	return ""
}

// invisible finds a character that shows nothing or turns the text around
// (Unicode categories Cc and Cf: zero-width spaces and joiners, U+202E and
// the other bidirectional controls, the byte order mark), which could make
// one address look like another.
func invisible(s string) (rune, bool) {
	for _, r := range s {
		if unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) {
			return r, true
		}
	}
	return 0, false
}

// checkDomain holds a domain to the rule of host names: dot-separated
// labels of letters, digits and hyphens, a hyphen neither first nor last,
// at most 63 octets each. A domain literal ([192.0.2.1]) is left to the
// relay.
func checkDomain(d string) string {
	if strings.HasPrefix(d, "[") {
		return ""
	}
	for _, label := range strings.Split(d, ".") {
		switch {
		case label == "":
			return "empty label"
		case len(label) > 63:
			return fmt.Sprintf("label of %d octets, more than 63", len(label))
		case label[0] == '-' || label[len(label)-1] == '-':
			return fmt.Sprintf("label %q starts or ends with a hyphen", label)
		}
		for _, r := range label {
			if r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				return fmt.Sprintf("%q is not a letter, digit or hyphen", r)
			}
		}
	}
	return ""
}

// Close closes the file.
func (r *Recipients) Close() error {
	if r.closer == nil {
		return nil
	}
	return r.closer.Close()
}

// addrSet is an open-addressing hash set of 64-bit hashes of addresses with
// the row each was first seen on. Keeping hashes instead of strings bounds
// memory at 12 bytes per slot; two distinct addresses share a hash with a
// probability around n²/2⁶⁵ (3e-8 for a million rows).
type addrSet struct {
	seed   maphash.Seed
	hashes []uint64 // 0 marks a free slot
	rows   []uint32
	n      int
}

// add records addr at row, or reports the row it was first seen on.
func (s *addrSet) add(addr string, row int) (prev int, dup bool) {
	if s.hashes == nil {
		s.seed = maphash.MakeSeed()
		s.hashes = make([]uint64, 1024)
		s.rows = make([]uint32, 1024)
	}
	h := maphash.String(s.seed, addr)
	if h == 0 {
		h = 1
	}
	mask := uint64(len(s.hashes) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.hashes[i] {
		case h:
			return int(s.rows[i]), true
		case 0:
			s.hashes[i], s.rows[i] = h, uint32(row)
			s.n++
			if s.n*4 >= len(s.hashes)*3 {
				s.grow()
			}
			return 0, false
		}
	}
}

func (s *addrSet) grow() {
	old, oldRows := s.hashes, s.rows
	s.hashes = make([]uint64, 2*len(old))
	s.rows = make([]uint32, 2*len(old))
	mask := uint64(len(s.hashes) - 1)
	for j, h := range old {
		if h == 0 {
			continue
		}
		i := h & mask
		for s.hashes[i] != 0 {
			i = (i + 1) & mask
		}
		s.hashes[i], s.rows[i] = h, oldRows[j]
	}
}

// File is the list's name relative to the campaign folder, as problems
// print it.
func (r *Recipients) File() string { return r.file }

// CheckAddr refuses what cannot go into an envelope: anything but a bare
// addr-spec (RFC 5322 section 3.4.1). It is the rule rows are held to,
// for an address from elsewhere (a test send's).
func CheckAddr(s string) error {
	if msg := checkAddr(s); msg != "" {
		return errors.New(msg)
	}
	return nil
}
