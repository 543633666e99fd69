package campaign

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
)

// charset is a text encoding recipients.encoding can name.
type charset struct {
	name string            // as problems print it
	enc  encoding.Encoding // nil for UTF-8, read as it is
	// needBOM: the file must start with a byte order mark that says
	// which UTF-16 it is.
	needBOM bool
}

var (
	utf8Charset    = &charset{name: "utf-8"}
	latin1Charset  = &charset{name: "latin1", enc: charmap.ISO8859_1}
	cp1252Charset  = &charset{name: "windows-1252", enc: charmap.Windows1252}
	utf16Charset   = &charset{name: "utf-16", needBOM: true}
	utf16LECharset = &charset{name: "utf-16le", enc: unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM)}
	utf16BECharset = &charset{name: "utf-16be", enc: unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM)}
)

// charsets maps the names recipients.encoding accepts, lower-cased with
// "_" read as "-", to their charset.
var charsets = map[string]*charset{
	"": utf8Charset, "utf-8": utf8Charset, "utf8": utf8Charset,
	"latin1": latin1Charset, "latin-1": latin1Charset, "iso-8859-1": latin1Charset, "iso8859-1": latin1Charset,
	"windows-1252": cp1252Charset, "cp1252": cp1252Charset,
	"utf-16": utf16Charset, "utf16": utf16Charset,
	"utf-16le": utf16LECharset, "utf-16be": utf16BECharset,
}

// lookupCharset returns the charset recipients.encoding names; empty is
// UTF-8. The error lists the names known.
func lookupCharset(name string) (*charset, error) {
	cs, ok := charsets[strings.ReplaceAll(strings.ToLower(strings.TrimSpace(name)), "_", "-")]
	if !ok {
		return nil, fmt.Errorf("%q is not an encoding mailrun reads: use utf-8 (the default), latin1, windows-1252, utf-16 (with a byte order mark), utf-16le or utf-16be", name)
	}
	return cs, nil
}

// byteOrderMarks are the marks that decide a file's encoding whatever
// recipients.encoding says, as browsers do (WHATWG Encoding, "BOM sniff"):
// no file in Latin-1 or Windows-1252 begins with "ï»¿", "ÿþ" or "þÿ".
var byteOrderMarks = []struct {
	mark []byte
	cs   *charset
}{
	{[]byte("\xEF\xBB\xBF"), utf8Charset},
	{[]byte("\xFF\xFE"), utf16LECharset},
	{[]byte("\xFE\xFF"), utf16BECharset},
}

// decodeText returns the file as UTF-8 text and the charset it was read
// in: a byte order mark, which is dropped, decides; else cs does. A file
// that is UTF-8 is returned as it is, invalid bytes included, for Next to
// report them by row. The error is a header problem's message.
func decodeText(br *bufio.Reader, cs *charset) (*bufio.Reader, *charset, string) {
	start, _ := br.Peek(3)
	for _, b := range byteOrderMarks {
		if bytes.HasPrefix(start, b.mark) {
			br.Discard(len(b.mark))
			cs = b.cs
			break
		}
	}
	switch {
	case cs.needBOM:
		return nil, nil, "recipients.encoding is utf-16, but the file does not start with a byte order mark: set utf-16le or utf-16be"
	case cs.enc == nil:
		return br, cs, ""
	}
	return bufio.NewReaderSize(cs.enc.NewDecoder().Reader(br), br.Size()), cs, ""
}

// valueProblem says what is wrong with one value (or column name) read in
// cs, or "". A UTF-8 file's invalid bytes are notUTF8's to word. Any other
// file must have been text in cs: a byte Windows-1252 leaves undefined and
// a broken UTF-16 pair both come out as U+FFFD, and a C1 control character
// from a Latin-1 file is most likely a Windows-1252 "€" or curly quote read
// in the wrong encoding.
func valueProblem(s string, cs *charset) string {
	switch {
	case strings.IndexByte(s, 0) >= 0:
		return "NUL in the value"
	case cs.enc == nil:
		return ""
	case strings.ContainsRune(s, utf8.RuneError):
		return "bytes that are not valid " + cs.name + " (read as U+FFFD); check recipients.encoding"
	case cs == latin1Charset:
		for _, r := range s {
			if r >= 0x80 && r <= 0x9F {
				return fmt.Sprintf("byte 0x%02X is a control character in latin1 and %q in windows-1252: set recipients.encoding: windows-1252",
					r, charmap.Windows1252.DecodeByte(byte(r)))
			}
		}
	}
	return ""
}

// notUTF8 words the first invalid byte of s, read as UTF-8, with the fix:
// Excel on Windows saves "CSV" in the system's code page, in Western
// Europe and the Americas Windows-1252, of which Latin-1 is nearly all.
func notUTF8(s string) string {
	return fmt.Sprintf("not valid UTF-8 (byte 0x%02X); if the file comes from Excel or an older system, set recipients.encoding: windows-1252 (or latin1)",
		firstInvalidByte(s))
}

// firstInvalidByte is the first byte of s that does not start a UTF-8
// sequence; s must be invalid UTF-8.
func firstInvalidByte(s string) byte {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			return s[i]
		}
		i += n
	}
	return 0
}

// parseDelimiter reads recipients.delimiter: one character, or "tab" or
// `\t` for a tab; 0 when empty (detect it). The character must be one
// encoding/csv can split on: not a quote, CR or LF.
func parseDelimiter(s string) (rune, error) {
	switch strings.ToLower(s) {
	case "":
		return 0, nil
	case "tab", `\t`:
		return '\t', nil
	}
	r, n := utf8.DecodeRuneInString(s)
	switch {
	case n != len(s) || r == utf8.RuneError:
		return 0, fmt.Errorf("%q is not one character: use for example \";\", \",\" or tab", s)
	case r == '"' || r == '\r' || r == '\n' || r == 0:
		return 0, fmt.Errorf("%q cannot separate columns", s)
	}
	return r, nil
}

// detectableDelimiters are the separators detected from the header line,
// in order of preference on a tie: a comma is the standard's (RFC 4180),
// a semicolon is what Excel writes where the decimal mark is a comma, a tab
// is Excel's "Unicode text" and what a copy from a spreadsheet gives.
var detectableDelimiters = []rune{',', ';', '\t'}

// detectDelimiter picks, among detectableDelimiters, the one that splits
// the header (the first line in br, peeked and left unread) into the most
// non-empty columns. Quotes are honoured, so `"Name, first";email` is two
// columns split at ";".
func detectDelimiter(br *bufio.Reader) rune {
	buf, _ := br.Peek(br.Size())
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		buf = buf[:i+1]
	}
	best, bestN := detectableDelimiters[0], 0
	for _, d := range detectableDelimiters {
		if n := countColumns(buf, d); n > bestN {
			best, bestN = d, n
		}
	}
	return best
}

// countColumns is the number of non-empty columns line splits into at d.
// Quotes are read leniently, so that a quote where it is no CSV quote at d
// ("a;b",c split at ";") only makes a field longer.
func countColumns(line []byte, d rune) int {
	cr := csv.NewReader(bytes.NewReader(line))
	cr.Comma, cr.FieldsPerRecord, cr.LazyQuotes = d, -1, true
	fields, err := cr.Read()
	if err != nil {
		return 0
	}
	n := 0
	for _, f := range fields {
		if strings.TrimSpace(f) != "" {
			n++
		}
	}
	return n
}
