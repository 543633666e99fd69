package campaign

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mailrun/mailrun/render"
)

// readAll reads every row, printing each as "row email" or its problems.
func readAll(t testing.TB, csvText string) ([]string, error) {
	r, err := newRecipients(strings.NewReader(csvText), RecipientsFile{File: "r.csv"})
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
			"jose@exämple.example,G\n" +
			"ann @example.org,H\n",
			[]string{
				`r.csv:2: email: invisible or direction-control character U+200B in "zero\u200bwidth@example.org"`,
				`r.csv:3: email: invisible or direction-control character U+202E in "rlo\u202e@example.org"`,
				`r.csv:4: email: domain "-example.org": label "-example" starts or ends with a hyphen`,
				`r.csv:5: email: domain "exa_mple.org": '_' is not a letter, digit or hyphen`,
				"r.csv:6: email: the part before @ has 65 octets, more than 64 (RFC 5321 section 4.5.3.1)",
				"r.csv:7: email: 262 octets, more than 254 (RFC 5321 section 4.5.3.1)",
				"8 jose@exämple.example G",
				`r.csv:9: email: invalid address "ann @example.org": it contains a space; did you mean "ann@example.org"?`,
			}},
		{"wrong field count", "email,name\na@x.example\nb@x.example,Bob,extra\nc@x.example,Cy\n",
			[]string{"r.csv:2: 1 fields, but the header has 2 columns", "r.csv:3: 3 fields, but the header has 2 columns", "4 c@x.example Cy"}},
		{"invalid and empty address", "email,name\nnot-an-address,A\n,B\n\"Ann <a@x.example>\",C\n a@x.example ,D\n",
			[]string{`r.csv:2: email: invalid address "not-an-address": missing '@' or angle-addr`, "r.csv:3: email: empty address",
				`r.csv:4: email: want a bare address like ann@example.org, got "Ann <a@x.example>"`, "5 a@x.example D"}},
		{"duplicate in other case", "email,name\nAnn@X.example,A\nb@x.example,B\nann@x.EXAMPLE,C\n",
			[]string{"2 Ann@X.example A", "3 b@x.example B", "r.csv:4: email: warning: duplicate of row 2, skipped"}},
		{"invalid UTF-8", "email,name,city\na@x.example,\xff\xfe,\xe9\nb@x.example,Bø,x\nc@x.example,C,\xe9\n", []string{
			"r.csv:2: name: not valid UTF-8 (byte 0xFF); if the file comes from Excel or an older system, set recipients.encoding: windows-1252 (or latin1)",
			"3 b@x.example Bø",
			"r.csv:4: city: not valid UTF-8, like row 2"}},
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
		{"no address column", "name,phone\n", "r.csv:1: no column named email, e-mail, email address or mail (columns: name, phone)"},
		{"duplicate column", "email,name,name\n", "r.csv:1: name: column named twice"},
		{"empty column", "email,,x\n", "r.csv:1: column 2 has no name"},
		{"invalid UTF-8 header", "email,n\xff\n", "r.csv:1: column 2: not valid UTF-8 (byte 0xFF); if the file comes from Excel or an older system, set recipients.encoding: windows-1252 (or latin1)"},
		{"blank first line", "\nemail\n", "r.csv:2: the header row must be line 1"},
		{"UTF-16BE without BOM", "\x00e\x00m\x00a\x00i\x00l\x00\n", "r.csv:1: column 1: NUL in the name, as in a UTF-16 file without a byte order mark: set recipients.encoding: utf-16be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newRecipients(strings.NewReader(tt.csv), RecipientsFile{File: "r.csv"})
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
// increasing order, whatever separator it detects and in every encoding.
func FuzzRecipients(f *testing.F) {
	for _, s := range []string{
		"email,name\na@x.example,Ann\n",
		"\uFEFFemail,name\r\na@x.example,\"x\r\ny\"\r\n",
		"email\n\"unterminated\n",
		"email,name\na@x.example\nA@X.EXAMPLE,a,b\n",
		"E-Mail;Name\r\na@x.example;\"Lee; Ann\"\r\n",
		"Email Address\tFirst Name\na@x.example\tAnn\n",
		"\xFF\xFEe\x00m\x00a\x00i\x00l\x00\n\x00a\x00@\x00x\x00\n\x00",
		"email,name\na@x.example,Zo\xEB \x80\x81\n",
	} {
		f.Add(s)
	}
	configs := []RecipientsFile{
		{File: "r.csv"},
		{File: "r.csv", Email: "email"},
		{File: "r.csv", Delimiter: ";", Encoding: "windows-1252"},
		{File: "r.csv", Encoding: "latin1"},
		{File: "r.csv", Delimiter: "tab", Encoding: "utf-16le"},
	}
	f.Fuzz(func(t *testing.T, data string) {
		for _, cfg := range configs {
			fuzzRecipients(t, data, cfg)
		}
	})
}

func fuzzRecipients(t *testing.T, data string, cfg RecipientsFile) {
	r, err := newRecipients(strings.NewReader(data), cfg)
	if err != nil {
		var ps Problems
		if !errors.As(err, &ps) {
			t.Fatalf("%+v: got %v, want Problems", cfg, err)
		}
		return
	}
	if col := r.EmailColumn(); col == "" {
		t.Fatalf("%+v: no address column", cfg)
	}
	last := 1
	// A decoded file is at most three times as long as the bytes read.
	for i := 0; i <= 3*len(data)+1; i++ {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		var ps Problems
		if err != nil && !errors.As(err, &ps) {
			t.Fatalf("%+v: unexpected fatal error %v", cfg, err)
		}
		if rec.Row <= last {
			t.Fatalf("%+v: row %d after row %d", cfg, rec.Row, last)
		}
		for _, p := range ps {
			if p.Line != rec.Row {
				t.Fatalf("%+v: problem line %d for row %d", cfg, p.Line, rec.Row)
			}
		}
		if ps == nil && !utf8.ValidString(rec.Email) {
			t.Fatalf("%+v: row %d: address %q is not UTF-8", cfg, rec.Row, rec.Email)
		}
		last = rec.Row
	}
	t.Fatalf("%+v: more rows than bytes in %q", cfg, data)
}

// readFile reads the list testdata/recipients/name as cfg says, giving
// each row as "row email col=value ..." in header order, or its problems.
func readFile(t *testing.T, name string, cfg RecipientsFile) (column string, rows []string, err error) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "recipients", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg.File = name
	r, err := newRecipients(f, cfg)
	if err != nil {
		return "", nil, err
	}
	for range 100 {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return r.EmailColumn(), rows, nil
		}
		var ps Problems
		switch {
		case errors.As(err, &ps):
			rows = append(rows, ps.Error())
		case err != nil:
			t.Fatal(err)
		default:
			row := fmt.Sprintf("%d %s", rec.Row, rec.Email)
			for _, h := range r.Header() {
				row += " " + h + "=" + rec.Fields[h]
			}
			rows = append(rows, row)
		}
	}
	t.Fatal("more than 100 rows")
	return "", nil, nil
}

// TestRecipientsFiles reads lists as spreadsheets and older systems write
// them: the separator, the encoding and the address column are found or
// set, and what cannot be read says which key to set.
func TestRecipientsFiles(t *testing.T) {
	const hint1252 = "if the file comes from Excel or an older system, set recipients.encoding: windows-1252 (or latin1)"
	semicolon := []string{
		"2 ann@example.org E-Mail=ann@example.org Vorname=Ann Stadt=Köln",
		"3 bob@example.org E-Mail=bob@example.org Vorname=Bob; Jr. Stadt=Zürich",
	}
	tab := []string{
		"2 ann@example.org email=ann@example.org First Name=Ann Lee plan=pro",
		"3 bob@example.org email=bob@example.org First Name=Bob plan=free",
	}
	latin1 := []string{
		"2 ann@example.org email=ann@example.org name=Zoë city=Genève",
		"3 bob@example.org email=bob@example.org name=José city=Sevilla",
		"4 cy@example.org email=cy@example.org name=Cy city=Oslo",
	}
	utf16 := []string{
		"2 ann@example.org Email Address=ann@example.org First Name=Ann",
		"3 bob@example.org Email Address=bob@example.org First Name=Bøb",
	}
	nobom := []string{"2 ann@example.org email=ann@example.org name=Ann"}
	tests := []struct {
		name, file string
		cfg        RecipientsFile
		column     string   // the address column found
		want       []string // rows, or the header problem
	}{
		// Delimiter.
		{"semicolon detected", "semicolon.csv", RecipientsFile{}, "E-Mail", semicolon},
		{"semicolon set", "semicolon.csv", RecipientsFile{Delimiter: ";"}, "E-Mail", semicolon},
		{"comma set on a semicolon file", "semicolon.csv", RecipientsFile{Delimiter: ","}, "", []string{
			`semicolon.csv:1: no column named email, e-mail, email address or mail (columns: E-Mail;Vorname;Stadt); if the columns are separated by ";", set recipients.delimiter: ";"`}},
		{"tab detected", "tab.csv", RecipientsFile{}, "email", tab},
		{"tab set as tab", "tab.csv", RecipientsFile{Delimiter: "tab"}, "email", tab},
		{`tab set as \t`, "tab.csv", RecipientsFile{Delimiter: `\t`}, "email", tab},
		{"tab set as a tab", "tab.csv", RecipientsFile{Delimiter: "\t"}, "email", tab},
		// Encoding.
		{"latin1 read as UTF-8", "latin1.csv", RecipientsFile{}, "email", []string{
			"latin1.csv:2: name: not valid UTF-8 (byte 0xEB); " + hint1252,
			"latin1.csv:3: name: not valid UTF-8, like row 2",
			"4 cy@example.org email=cy@example.org name=Cy city=Oslo",
		}},
		{"latin1", "latin1.csv", RecipientsFile{Encoding: "latin1"}, "email", latin1},
		{"iso-8859-1", "latin1.csv", RecipientsFile{Encoding: "ISO-8859-1"}, "email", latin1},
		{"latin1 read as windows-1252", "latin1.csv", RecipientsFile{Encoding: "windows-1252"}, "email", latin1},
		{"windows-1252", "windows1252.csv", RecipientsFile{Encoding: "windows-1252"}, "email", []string{
			"2 ann@example.org email=ann@example.org name=Ann price=5 €",
			"3 bob@example.org email=bob@example.org name=“Bob” price=10 €",
		}},
		{"windows-1252 read as UTF-8", "windows1252.csv", RecipientsFile{}, "email", []string{
			"windows1252.csv:2: price: not valid UTF-8 (byte 0x80); " + hint1252,
			"windows1252.csv:3: name: not valid UTF-8, like row 2",
		}},
		{"windows-1252 read as latin1", "windows1252.csv", RecipientsFile{Encoding: "latin1"}, "email", []string{
			`windows1252.csv:2: price: byte 0x80 is a control character in latin1 and '€' in windows-1252: set recipients.encoding: windows-1252`,
			`windows1252.csv:3: name: byte 0x93 is a control character in latin1 and '“' in windows-1252: set recipients.encoding: windows-1252` + "\n" +
				`windows1252.csv:3: price: byte 0x80 is a control character in latin1 and '€' in windows-1252: set recipients.encoding: windows-1252`,
		}},
		{"utf-16le with BOM", "utf16le.csv", RecipientsFile{Encoding: "utf-16"}, "Email Address", utf16},
		{"utf-16le with BOM, no encoding set", "utf16le.csv", RecipientsFile{}, "Email Address", utf16},
		{"utf-16le with BOM, the BOM decides", "utf16le.csv", RecipientsFile{Encoding: "latin1"}, "Email Address", utf16},
		{"utf-16be with BOM", "utf16be.csv", RecipientsFile{Encoding: "utf-16"}, "email", nobom},
		{"utf-16le without BOM", "utf16le_nobom.csv", RecipientsFile{Encoding: "utf-16le"}, "email", nobom},
		{"utf-16 without BOM", "utf16le_nobom.csv", RecipientsFile{Encoding: "utf-16"}, "", []string{
			"utf16le_nobom.csv:1: recipients.encoding is utf-16, but the file does not start with a byte order mark: set utf-16le or utf-16be"}},
		{"utf-16le without BOM read as UTF-8", "utf16le_nobom.csv", RecipientsFile{}, "", []string{
			"utf16le_nobom.csv:1: column 1: NUL in the name, as in a UTF-16 file without a byte order mark: set recipients.encoding: utf-16le"}},
		// Address column.
		{"Email Address found", "email_address.csv", RecipientsFile{}, "Email Address", []string{
			"2 ann@example.org First Name=Ann Last Name=Lee Email Address=ann@example.org Phone=555-0100"}},
		{"email set in another letter case", "email_address.csv", RecipientsFile{Email: "email address"}, "Email Address", []string{
			"2 ann@example.org First Name=Ann Last Name=Lee Email Address=ann@example.org Phone=555-0100"}},
		{"email set to a missing column", "email_address.csv", RecipientsFile{Email: "email"}, "", []string{
			"email_address.csv:1: email: no such column (columns: First Name, Last Name, Email Address, Phone); set recipients.email to the column holding the address"}},
		{"email set to another column", "email_address.csv", RecipientsFile{Email: "Phone"}, "Phone", []string{
			`email_address.csv:2: Phone: invalid address "555-0100": missing '@' or angle-addr`}},
		{"no address column", "no_address.csv", RecipientsFile{}, "", []string{
			"no_address.csv:1: no column named email, e-mail, email address or mail (columns: name, phone, city); set recipients.email to the column holding the address"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			column, rows, err := readFile(t, tt.file, tt.cfg)
			if err != nil {
				var ps Problems
				if !errors.As(err, &ps) {
					t.Fatalf("got %v, want Problems", err)
				}
				rows = []string{ps.Error()}
			}
			if got, want := strings.Join(rows, "\n"), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
			if column != tt.column {
				t.Errorf("got address column %q, want %q", column, tt.column)
			}
		})
	}
}

func TestDetectDelimiter(t *testing.T) {
	tests := []struct {
		name, header string
		want         rune
	}{
		{"comma", "email,name\n", ','},
		{"semicolon", "email;name;city\r\n", ';'},
		{"tab", "email\tname\n", '\t'},
		{"one column", "email\n", ','},
		{"tie goes to comma", "email;x,name\n", ','},
		{"more columns win", "email;x,name;y\n", ';'},
		{"empty columns do not count", "email;;;,name,city\n", ','},
		{"quoted semicolon", "\"a;b\",email,name\n", ','},
		{"quoted comma", "\"Name, first\";email\n", ';'},
		{"only the first line", "email;name\na,b,c,d,e\n", ';'},
		{"empty file", "", ','},
		{"stray quote", "a\"b;email;name\n", ';'},
		{"tab with commas in names", "email\tLast, First\tcity\n", '\t'},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := detectDelimiter(bufio.NewReader(strings.NewReader(tt.header))); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEmailColumn(t *testing.T) {
	tests := []struct {
		name   string
		header []string
		want   string // column or problem
	}{
		{"email", []string{"name", "email"}, "email"},
		{"Email", []string{"Email", "name"}, "Email"},
		{"E-mail", []string{"E-mail"}, "E-mail"},
		{"e_mail", []string{"e_mail"}, "e_mail"},
		{"E-Mail Address", []string{"E-Mail Address"}, "E-Mail Address"},
		{"EmailAddress", []string{"EmailAddress"}, "EmailAddress"},
		{"mail", []string{"MAIL"}, "MAIL"},
		{"email beats mail", []string{"mail", "Email"}, "Email"},
		{"email beats email address", []string{"Email Address", "email"}, "email"},
		{"two alike", []string{"Email", "E-mail"}, `columns "Email" and "E-mail" could each hold the address: set recipients.email to the one that does`},
		{"none", []string{"emails", "mailing"}, "no column named email, e-mail, email address or mail (columns: emails, mailing); set recipients.email to the column holding the address"},
		{"many columns", []string{"c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "c11", "c12", "c13", "c14", "c15", "c16", "c17", "c18", "c19", "c20", "c21"},
			"no column named email, e-mail, email address or mail (columns: c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18, c19, c20, ... (21 in all)); set recipients.email to the column holding the address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			i, p := emailColumn(tt.header, "", ',')
			if p != nil {
				got = p.msg
			} else {
				got = tt.header[i]
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	// recipients.email set: the exact name first, then any letter case.
	for _, tt := range []struct{ want, wantCol string }{{"Email", "Email"}, {"EMAIL", "email"}, {"mail", "mail"}} {
		header := []string{"email", "Email", "mail"}
		if tt.want == "EMAIL" {
			header = []string{"name", "email"}
		}
		i, p := emailColumn(header, tt.want, ',')
		if p != nil || header[i] != tt.wantCol {
			t.Errorf("recipients.email %q in %v: got %d, %v, want %q", tt.want, header, i, p, tt.wantCol)
		}
	}
	if _, p := emailColumn([]string{"Email", "EMAIL"}, "email", ','); p == nil || !strings.Contains(p.msg, "could each hold") {
		t.Errorf("got %v, want both columns named", p)
	}
}

// TestRecipientsConfig: the keys decode, bad values are refused at Load
// with their line, and the list is read as they say.
func TestRecipientsConfig(t *testing.T) {
	list, err := os.ReadFile(filepath.Join("testdata", "recipients", "windows1252.csv"))
	if err != nil {
		t.Fatal(err)
	}
	recipients := func(s string) string {
		return strings.Replace(baseYAML, "recipients: recipients.csv", "recipients:\n  file: list.csv\n"+s, 1)
	}
	t.Run("read as set", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{"list.csv": string(list),
			"campaign.yaml": recipients("  delimiter: \";\"\n  encoding: cp1252\n  email: EMAIL\n")})
		c := mustLoad(t, dir)
		r, err := OpenRecipients(c)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rec, err := r.Next()
		if err != nil || rec.Fields["price"] != "5 €" || r.EmailColumn() != "email" {
			t.Errorf("got %v, %v, column %q, want price 5 € and column email", rec.Fields, err, r.EmailColumn())
		}
	})
	for _, tt := range []struct{ name, yaml, want string }{
		{"unknown encoding", "  encoding: ebcdic\n", `campaign.yaml:5: recipients.encoding: "ebcdic" is not an encoding mailrun reads: use utf-8 (the default), latin1, windows-1252, utf-16 (with a byte order mark), utf-16le or utf-16be`},
		{"two characters", "  delimiter: \";;\"\n", `campaign.yaml:5: recipients.delimiter: ";;" is not one character: use for example ";", "," or tab`},
		{"quote", "  delimiter: '\"'\n", `campaign.yaml:5: recipients.delimiter: "\"" cannot separate columns`},
		{"unquoted pipe", "  delimiter: |\n", `campaign.yaml:5: recipients.delimiter: empty: write the character in quotes, e.g. delimiter: "|", or leave the key out to detect it`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"list.csv": string(list), "campaign.yaml": recipients(tt.yaml)})
			_, err := Load(dir)
			if err == nil || strings.TrimPrefix(err.Error(), dir+string(filepath.Separator)) != tt.want {
				t.Errorf("got %v, want %s", err, tt.want)
			}
		})
	}
}

// TestColumnNameWithSpace: a column whose name is no Go identifier is
// reached with index, through render's data.
func TestColumnNameWithSpace(t *testing.T) {
	list, err := os.ReadFile(filepath.Join("testdata", "recipients", "tab.csv"))
	if err != nil {
		t.Fatal(err)
	}
	dir := writeFiles(t, map[string]string{
		"recipients.csv": string(list),
		"campaign.yaml":  strings.Replace(baseYAML, `subject: "Hi {{.first_name}}"`, `subject: 'Hi {{index . "First Name"}}'`, 1),
		"body.md":        "Hello {{index . \"First Name\"}}, you are on {{.plan}}.\n",
	})
	c := mustLoad(t, dir)
	cfg, err := c.RenderConfig()
	if err != nil {
		t.Fatal(err)
	}
	rd, err := render.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	r, err := OpenRecipients(c)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := rd.Render(rec)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != "Hi Ann Lee" {
		t.Errorf("got subject %q, want %q", msg.Subject, "Hi Ann Lee")
	}
	containsAll(t, string(msg.Data), []string{"Hello Ann Lee, you are on pro."})
}
