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
	"slices"
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
// The file has a header row (line 1), uses CRLF or LF, and may quote fields
// (RFC 4180). Its columns are separated by recipients.delimiter, or else by
// whichever of comma, semicolon and tab splits the header into the most
// columns. It is text in recipients.encoding (UTF-8 by default), unless it
// starts with a byte order mark, which decides (UTF-8, UTF-16LE or
// UTF-16BE). A row is named by the file line where its record starts, so
// a quoted field spanning lines shifts the rows after it exactly as an
// editor shows them.
type Recipients struct {
	file     string // name in problems, relative to the campaign folder
	closer   io.Closer
	csv      *csv.Reader
	cs       *charset
	header   []string
	emailCol int
	seen     addrSet
	// badUTF8 is the first row with bytes that are not UTF-8: that row's
	// problem says what to do, the later ones refer to it.
	badUTF8 int
}

// OpenRecipients opens the campaign's CSV inside the campaign folder and
// reads its header row. Header problems (missing row, empty, duplicate or
// undecodable column names, no address column, a utf-16 file without a
// byte order mark) are returned as Problems; other errors are I/O errors.
// The caller must Close the Recipients.
func OpenRecipients(c *Campaign) (*Recipients, error) {
	root, err := os.OpenRoot(c.dir)
	if err != nil {
		return nil, fmt.Errorf("open recipients: %w", err)
	}
	defer root.Close()
	f, err := root.Open(c.Recipients.File)
	if err != nil {
		return nil, Problems{{File: c.File(c.Recipients.File), Field: "recipients", Message: fileErr(c.Recipients.File, err)}}
	}
	// Problems name the list as the user would type it.
	cfg := c.Recipients
	cfg.File = c.File(cfg.File)
	r, err := newRecipients(f, cfg)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer = f
	return r, nil
}

// newRecipients reads the header from in, as cfg says; cfg.File names in
// problems. The error for a delimiter or encoding that Load would have
// refused is a plain error.
func newRecipients(in io.Reader, cfg RecipientsFile) (*Recipients, error) {
	file := cfg.File
	cs, err := lookupCharset(cfg.Encoding)
	if err != nil {
		return nil, fmt.Errorf("recipients.encoding: %w", err)
	}
	delim, err := parseDelimiter(cfg.Delimiter)
	if err != nil {
		return nil, fmt.Errorf("recipients.delimiter: %w", err)
	}
	problem := func(field, format string, args ...any) error {
		return Problems{{File: file, Line: 1, Field: field, Message: fmt.Sprintf(format, args...)}}
	}
	text, cs, msg := decodeText(bufio.NewReaderSize(in, 64<<10), cs)
	if msg != "" {
		return nil, problem("", "%s", msg)
	}
	if delim == 0 {
		delim = detectDelimiter(text)
	}
	r := &Recipients{file: file, csv: csv.NewReader(text), cs: cs, emailCol: -1}
	r.csv.Comma = delim
	r.csv.FieldsPerRecord = -1 // a wrong count is a row problem, checked by Next
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
		switch msg := valueProblem(h, cs); {
		case cs.enc == nil && !utf8.ValidString(h):
			return nil, problem("", "column %d: %s", i+1, notUTF8(h))
		case strings.IndexByte(h, 0) >= 0:
			// "email" in UTF-16 is "e\x00m\x00..." (LE) or "\x00e\x00m..." (BE).
			enc := "utf-16le"
			if h[0] == 0 {
				enc = "utf-16be"
			}
			return nil, problem("", "column %d: NUL in the name, as in a UTF-16 file without a byte order mark: set recipients.encoding: %s", i+1, enc)
		case msg != "":
			return nil, problem("", "column %d: %s", i+1, msg)
		case h == "":
			return nil, problem("", "column %d has no name", i+1)
		case seen[h]:
			return nil, problem(h, "column named twice")
		}
		seen[h] = true
		header[i] = h
	}
	r.header = header
	col, hp := emailColumn(header, strings.TrimSpace(cfg.Email), delim)
	if hp != nil {
		return nil, problem(hp.field, "%s", hp.msg)
	}
	r.emailCol = col
	return r, nil
}

// Header returns the column names.
func (r *Recipients) Header() []string { return r.header }

// EmailColumn is the name of the column holding the address, as the
// header spells it: recipients.email's, or the one found by its name.
func (r *Recipients) EmailColumn() string { return r.header[r.emailCol] }

// addressNames are the column names taken for the address when
// recipients.email is not set, best first, as addressName normalizes
// them: "Email", "E-mail", "e_mail", "Email Address", "E-Mail-Address",
// "mail".
var addressNames = []string{"email", "emailaddress", "mail"}

// addressName lower-cases a column name and drops spaces, hyphens and
// underscores, so that the ways people write "e-mail address" compare equal.
func addressName(h string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '_' {
			return -1
		}
		return unicode.ToLower(r)
	}, h)
}

// headerProblem is a problem of the header row, on a column (field) or not.
type headerProblem struct{ field, msg string }

// emailColumn finds the address column: the one named want (exactly, or
// else in any letter case), or with want empty the column with the best of
// addressNames. Several columns that fit equally well are a problem, as is
// none; the problem lists the columns.
func emailColumn(header []string, want string, delim rune) (int, *headerProblem) {
	var found []int
	if want != "" {
		if i := slices.Index(header, want); i >= 0 {
			return i, nil
		}
		for i, h := range header {
			if strings.EqualFold(h, want) {
				found = append(found, i)
			}
		}
	} else {
		for _, name := range addressNames {
			for i, h := range header {
				if addressName(h) == name {
					found = append(found, i)
				}
			}
			if len(found) > 0 {
				break
			}
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		names := make([]string, len(found))
		for j, i := range found {
			names[j] = strconv.Quote(header[i])
		}
		return -1, &headerProblem{want, "columns " + strings.Join(names, " and ") +
			" could each hold the address: set recipients.email to the one that does"}
	case want != "":
		return -1, &headerProblem{want, "no such column " + listColumns(header, delim)}
	}
	return -1, &headerProblem{"", "no column named email, e-mail, email address or mail " + listColumns(header, delim)}
}

// listColumns shows the header in a problem, the first 20 names, and says
// what to set: recipients.delimiter for a header that is one column with a
// separator in it, else recipients.email.
func listColumns(header []string, delim rune) string {
	names := header
	more := ""
	if len(names) > 20 {
		names, more = names[:20], fmt.Sprintf(", ... (%d in all)", len(header))
	}
	s := "(columns: " + strings.Join(names, ", ") + more + "); "
	if len(header) == 1 {
		for _, d := range []string{",", ";", "\t", "|"} {
			if d != string(delim) && strings.Contains(header[0], d) {
				if d == "\t" {
					d = "tab"
				} else {
					d = strconv.Quote(d)
				}
				return s + "if the columns are separated by " + d + ", set recipients.delimiter: " + d
			}
		}
	}
	return s + "set recipients.email to the column holding the address"
}

// Next returns the next recipient.
//
// It returns io.EOF at the end. A row that cannot be used gives its
// Recipient (Row set, Email when known) and a Problems error: wrong field
// count, text that is not in the file's encoding (the first such row says
// which recipients.encoding to set, the later ones refer to it) or a NUL
// in a value, an empty or invalid address (see CheckAddr), or (as a
// warning) a duplicate of an earlier row in any letter case. Such a row
// must be skipped and Next called again. Any other error is fatal.
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
	badText := false // one problem per row for text not in the encoding
	for i, v := range rec {
		name := r.header[i]
		switch msg := valueProblem(v, r.cs); {
		case r.cs.enc == nil && !utf8.ValidString(v):
			if !badText {
				ps = append(ps, r.notUTF8(row, name, v))
			}
			badText = true
		case msg != "":
			ps = append(ps, Problem{File: r.file, Line: row, Field: name, Message: msg})
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

// notUTF8 is the problem of a value v in column name on row that is not
// UTF-8: the first such row of the file says what to do about it, the
// others refer to it, so a Latin-1 list is one explanation and a count.
func (r *Recipients) notUTF8(row int, name, v string) Problem {
	if r.badUTF8 == 0 {
		r.badUTF8 = row
		return Problem{File: r.file, Line: row, Field: name, Message: notUTF8(v)}
	}
	return Problem{File: r.file, Line: row, Field: name, Message: "not valid UTF-8, like row " + strconv.Itoa(r.badUTF8)}
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
	if strings.ContainsAny(s, " \t") && !strings.ContainsAny(s, "<>\"(") {
		return fmt.Sprintf("invalid address %q: it contains a space; did you mean %q?", s, strings.Join(strings.Fields(s), ""))
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
