package campaign

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// readAll reads every row, printing each as "row email" or its problems.
func readAll(t testing.TB, csvText string) ([]string, error) {
	r, err := newRecipients(strings.NewReader(csvText), "r.csv", "email")
	if err != nil {
		return nil, err
	}
	var out []string
	for i := 0; i < 1000; i++ {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		var ps Problems
		switch {
		case errors.As(err, &ps):
			out = append(out, ps.Error())
		case err != nil:
			return out, err
		default:
			out = append(out, fmt.Sprintf("%d %s %s", rec.Row, rec.Email, rec.Fields["name"]))
		}
	}
	t.Fatal("more than 1000 rows")
	return nil, nil
}

func TestRecipients(t *testing.T) {
	tests := []struct {
		name string
		csv  string
		want []string
	}{
		{"plain LF", "email,name\na@x.example,Ann\nb@x.example,Bob\n", []string{"2 a@x.example Ann", "3 b@x.example Bob"}},
		{"BOM and CRLF", "\uFEFFemail,name\r\na@x.example,Ann\r\nb@x.example,Bob", []string{"2 a@x.example Ann", "3 b@x.example Bob"}},
		{"quoted fields", "email,name\n\"a@x.example\",\"Lee, Ann \"\"A\"\"\"\n", []string{`2 a@x.example Lee, Ann "A"`}},
		{"quoted newline shifts rows", "email,name\na@x.example,\"two\nlines\"\nb@x.example,Bob\n",
			// A line break is body text; render refuses it only in a header.
			[]string{"2 a@x.example two\nlines", "4 b@x.example Bob"}},
		{"NUL in a value", "email,name\na@x.example,\"a\x00b\"\n", []string{"r.csv:2: name: NUL in the value"}},
		{"address rules", "email,name\n" +
			"zero\u200bwidth@example.org,A\n" +
			"rlo\u202e@example.org,B\n" +
			"a@-example.org,C\n" +
			"a@exa_mple.org,D\n" +
			strings.Repeat("l", 65) + "@example.org,E\n" +
			strings.Repeat("l", 60) + "@" + strings.Repeat("d", 60) + "." + strings.Repeat("d", 60) + "." + strings.Repeat("d", 60) + "." + strings.Repeat("d", 10) + ".example,F\n" +
			"jose@exämple.example,G\n",
			[]string{
				`r.csv:2: email: invisible or direction-control character U+200B in "zero\u200bwidth@example.org"`,
				`r.csv:3: email: invisible or direction-control character U+202E in "rlo\u202e@example.org"`,
				`r.csv:4: email: domain "-example.org": label "-example" starts or ends with a hyphen`,
				`r.csv:5: email: domain "exa_mple.org": '_' is not a letter, digit or hyphen`,
				"r.csv:6: email: the part before @ has 65 octets, more than 64 (RFC 5321 section 4.5.3.1)",
				"r.csv:7: email: 262 octets, more than 254 (RFC 5321 section 4.5.3.1)",
				"8 jose@exämple.example G",
			}},
		{"wrong field count", "email,name\na@x.example\nb@x.example,Bob,extra\nc@x.example,Cy\n",
			[]string{"r.csv:2: 1 fields, but the header has 2 columns", "r.csv:3: 3 fields, but the header has 2 columns", "4 c@x.example Cy"}},
		{"invalid and empty address", "email,name\nnot-an-address,A\n,B\n\"Ann <a@x.example>\",C\n a@x.example ,D\n",
			[]string{`r.csv:2: email: invalid address "not-an-address": missing '@' or angle-addr`, "r.csv:3: email: empty address",
				`r.csv:4: email: want a bare address like ann@example.org, got "Ann <a@x.example>"`, "5 a@x.example D"}},
		{"duplicate in other case", "email,name\nAnn@X.example,A\nb@x.example,B\nann@x.EXAMPLE,C\n",
			[]string{"2 Ann@X.example A", "3 b@x.example B", "r.csv:4: email: warning: duplicate of row 2, skipped"}},
		{"invalid UTF-8", "email,name\na@x.example,\xff\xfe\nb@x.example,Bø\n", []string{"r.csv:2: name: invalid UTF-8", "3 b@x.example Bø"}},
		{"bare quote", "email,name\na@x.example,A\"b\nb@x.example,B\n", []string{`r.csv:2: invalid CSV at line 2, column 14: bare " in non-quoted-field`, "3 b@x.example B"}},
		{"blank lines skipped", "email,name\n\na@x.example,A\n", []string{"3 a@x.example A"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(t, tt.csv)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestRecipientsHeader(t *testing.T) {
	tests := []struct{ name, csv, want string }{
		{"empty file", "", "r.csv:1: no header row"},
		{"no email column", "mail,name\n", "r.csv:1: email: no such column"},
		{"duplicate column", "email,name,name\n", "r.csv:1: name: column named twice"},
		{"empty column", "email,,x\n", "r.csv:1: column 2 has no name"},
		{"invalid UTF-8 header", "email,n\xff\n", "r.csv:1: column 2: invalid UTF-8"},
		{"blank first line", "\nemail\n", "r.csv:2: the header row must be line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newRecipients(strings.NewReader(tt.csv), "r.csv", "email")
			var ps Problems
			if !errors.As(err, &ps) || !strings.HasPrefix(ps.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestAddrSetGrows(t *testing.T) {
	var s addrSet
	const n = 5000 // several doublings of the 1024-slot table
	for i := range n {
		if _, dup := s.add(fmt.Sprintf("u%d@x.example", i), i+2); dup {
			t.Fatalf("row %d: got duplicate, want new", i+2)
		}
	}
	for i := range n {
		prev, dup := s.add(fmt.Sprintf("u%d@x.example", i), n+i)
		if !dup || prev != i+2 {
			t.Fatalf("got %d, %v, want duplicate of row %d", prev, dup, i+2)
		}
	}
	if s.n != n || s.n*4 >= len(s.hashes)*3 {
		t.Errorf("got %d entries in %d slots, want %d under 3/4 load", s.n, len(s.hashes), n)
	}
}

// FuzzRecipients: the reader never panics, ends, and names rows in strictly
// increasing order.
func FuzzRecipients(f *testing.F) {
	for _, s := range []string{
		"email,name\na@x.example,Ann\n",
		"\uFEFFemail,name\r\na@x.example,\"x\r\ny\"\r\n",
		"email\n\"unterminated\n",
		"email,name\na@x.example\nA@X.EXAMPLE,a,b\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		r, err := newRecipients(strings.NewReader(data), "r.csv", "email")
		if err != nil {
			return
		}
		last := 1
		for i := 0; i <= len(data)+1; i++ {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			var ps Problems
			if err != nil && !errors.As(err, &ps) {
				t.Fatalf("unexpected fatal error %v", err)
			}
			if rec.Row <= last {
				t.Fatalf("row %d after row %d", rec.Row, last)
			}
			for _, p := range ps {
				if p.Line != rec.Row {
					t.Fatalf("problem line %d for row %d", p.Line, rec.Row)
				}
			}
			last = rec.Row
		}
		t.Fatalf("more rows than bytes in %q", data)
	})
}
