package campaign

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
)

// Suppressions is the set of addresses never to send to, loaded from the
// campaign's suppress files. Addresses compare by AddrKey: the whole
// address, trimmed and in any letter case, as duplicates and the journal
// compare them.
type Suppressions struct {
	set map[string]struct{}
}

// LoadSuppressions reads every file listed under suppress, inside the
// campaign folder. A missing or unreadable file is an error naming it; an
// empty file is fine.
func LoadSuppressions(c *Campaign) (*Suppressions, error) {
	s := &Suppressions{set: map[string]struct{}{}}
	if len(c.Suppress) == 0 {
		return s, nil
	}
	root, err := os.OpenRoot(c.dir)
	if err != nil {
		return nil, fmt.Errorf("load suppress files: %w", err)
	}
	defer root.Close()
	for _, name := range c.Suppress {
		data, err := root.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("suppress: %s", fileErr(name, err))
		}
		addrs, _, err := parseSuppress(data)
		if err != nil {
			return nil, fmt.Errorf("suppress: %s: %w", name, err)
		}
		for _, a := range addrs {
			s.set[AddrKey(a)] = struct{}{}
		}
	}
	return s, nil
}

// Suppressed reports whether addr is on a suppress list. A nil Suppressions
// suppresses nothing.
func (s *Suppressions) Suppressed(addr string) bool {
	if s == nil {
		return false
	}
	_, ok := s.set[AddrKey(addr)]
	return ok
}

// Len is the number of distinct suppressed addresses.
func (s *Suppressions) Len() int {
	if s == nil {
		return 0
	}
	return len(s.set)
}

// suppressFormat says how a suppress file is laid out, so that appends keep it.
type suppressFormat struct {
	csv      bool
	columns  int // CSV: number of columns
	emailCol int // CSV: index of the email column
}

// parseSuppress reads either one address per line ('#' comments and blank
// lines ignored; "Name <addr>" is accepted) or, when the first
// non-comment line is a CSV header with an "email" column, a CSV.
func parseSuppress(data []byte) ([]string, suppressFormat, error) {
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		return nil, suppressFormat{}, err
	}
	if len(lines) == 0 {
		return nil, suppressFormat{}, nil
	}
	if f, ok := csvHeader(lines[0]); ok {
		r := csv.NewReader(bytes.NewReader(data))
		r.FieldsPerRecord = -1
		r.Comment = '#'
		var addrs []string
		if _, err := r.Read(); err != nil { // the header
			return nil, f, err
		}
		for {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				return addrs, f, nil
			}
			if err != nil {
				return nil, f, err
			}
			if f.emailCol < len(rec) {
				if a := bareAddr(rec[f.emailCol]); a != "" {
					addrs = append(addrs, a)
				}
			}
		}
	}
	addrs := make([]string, 0, len(lines))
	for _, l := range lines {
		addrs = append(addrs, bareAddr(l))
	}
	return addrs, suppressFormat{}, nil
}

// csvHeader recognises a CSV header line naming an email column.
func csvHeader(line string) (suppressFormat, bool) {
	rec, err := csv.NewReader(strings.NewReader(line)).Read()
	if err != nil {
		return suppressFormat{}, false
	}
	for i, h := range rec {
		if strings.EqualFold(strings.TrimSpace(h), "email") {
			return suppressFormat{csv: true, columns: len(rec), emailCol: i}, true
		}
	}
	return suppressFormat{}, false
}

// bareAddr extracts the address from "addr" or "Name <addr>"; text that does
// not parse is kept trimmed, so it still matches exactly.
func bareAddr(s string) string {
	s = strings.TrimSpace(s)
	if a, err := mail.ParseAddress(s); err == nil {
		return a.Address
	}
	return s
}

// AppendSuppress adds to the suppress file at path the addresses it does not
// hold yet (compared as Suppressed does), keeping its layout (one per line
// or CSV). The file is replaced atomically: a new copy is written next to it,
// synced and renamed over it, so a crash leaves the old or the new file,
// never half of one. A missing file is created. Addresses containing line
// breaks are refused.
func AppendSuppress(path string, addrs []string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("append suppress: %w", err)
	}
	have, format, err := parseSuppress(old)
	if err != nil {
		return fmt.Errorf("append suppress: %s: %w", filepath.Base(path), err)
	}
	known := make(map[string]bool, len(have)+len(addrs))
	for _, a := range have {
		known[AddrKey(a)] = true
	}
	var add []string
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		if strings.ContainsAny(a, "\r\n\x00") {
			return fmt.Errorf("append suppress: line break in address %q", a)
		}
		if a == "" || known[AddrKey(a)] {
			continue
		}
		known[AddrKey(a)] = true
		add = append(add, a)
	}
	if len(add) == 0 {
		return nil
	}

	var buf bytes.Buffer
	buf.Write(old)
	if len(old) > 0 && old[len(old)-1] != '\n' {
		buf.WriteByte('\n')
	}
	if format.csv {
		w := csv.NewWriter(&buf)
		for _, a := range add {
			rec := make([]string, format.columns)
			rec[format.emailCol] = a
			w.Write(rec)
		}
		w.Flush()
		if err := w.Error(); err != nil {
			return fmt.Errorf("append suppress: %w", err)
		}
	} else {
		for _, a := range add {
			buf.WriteString(a)
			buf.WriteByte('\n')
		}
	}
	mode := fs.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	if err := writeAtomic(path, buf.Bytes(), mode, true); err != nil {
		return fmt.Errorf("append suppress: %w", err)
	}
	return nil
}

// writeAtomic writes data to a temporary file in path's folder and renames
// it over path. With sync, the file and the folder are fsynced so that the
// rename survives a crash.
func writeAtomic(path string, data []byte, mode fs.FileMode, sync bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Chmod(mode); err != nil {
		return fail(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			return fail(err)
		}
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	if sync {
		if d, err := os.Open(dir); err == nil {
			err = d.Sync()
			d.Close()
			if err != nil {
				return err
			}
		}
	}
	return nil
}
