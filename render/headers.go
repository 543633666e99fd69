package render

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// reservedHeaders are the fields an extra header may not name: those render
// writes itself, of which RFC 5322 section 3.6 allows one each, and the
// trace fields Return-Path and Received, which belong to the transport
// (RFC 5321 section 4.4). Every Content-* field is refused as well (see
// CheckHeaderName), since the MIME tree is render's.
var reservedHeaders = map[string]bool{
	"from": true, "to": true, "cc": true, "bcc": true, "sender": true, "reply-to": true,
	"subject": true, "date": true, "message-id": true, "mime-version": true,
	"list-unsubscribe": true, "list-unsubscribe-post": true, "dkim-signature": true,
	"return-path": true, "received": true,
}

// CheckHeaderName is the one rule for the name of an extra header
// (Config.Headers): the syntax of RFC 5322 section 2.2, one or more
// printable US-ASCII characters except colon, and not a field render owns:
// the address fields (From, Sender, Reply-To, To, Cc, Bcc), Subject, Date,
// Message-ID, MIME-Version, every Content-* field, DKIM-Signature,
// List-Unsubscribe and List-Unsubscribe-Post, nor the trace fields
// Return-Path and Received. Case does not matter. The error names the
// header and the rule it breaks. New applies it to every name, and refuses
// besides two names that differ only in case.
func CheckHeaderName(name string) error {
	if err := checkFieldName(name); err != nil {
		return err
	}
	lower := strings.ToLower(name)
	if reservedHeaders[lower] || strings.HasPrefix(lower, "content-") {
		return fmt.Errorf("header %q is set by mailrun and cannot be overridden", name)
	}
	return nil
}

// checkFieldName enforces the syntax of a header field name, RFC 5322
// section 2.2: one or more printable US-ASCII characters except colon. It
// is the one syntax check, for extra headers and the DKIM h= list alike.
func checkFieldName(name string) error {
	if name == "" {
		return errors.New("empty header name")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < '!' || c > '~' || c == ':' {
			r, _ := utf8.DecodeRuneInString(name[i:])
			return fmt.Errorf("header name %q: invalid character %q (RFC 5322 section 2.2: printable US-ASCII except colon)", name, r)
		}
	}
	return nil
}

// errLineBreak is the cause when a rendered header value would start a new
// header line (header injection).
var errLineBreak = errors.New("value contains CR, LF or NUL")

// maxWord bounds an unencoded word in a header value: go-mail folds only at
// spaces, and RFC 5322 2.1.1 limits a line to 998 octets.
const maxWord = 900

// checkHeaderValue refuses values that could inject a header or break the
// line limit, and values with other control characters: a header value is
// text (RFC 5322 sections 2.2 and 3.2.5), and readers disagree on them even
// encoded (Python's email takes U+001C to U+001F for blanks in a display
// name). A tab is a blank, which oneLine makes a space. tmpl names the
// template the value came from.
func checkHeaderValue(tmpl, v string) error {
	if strings.ContainsAny(v, "\r\n\x00") {
		return fmt.Errorf("template %q: %w: %q", tmpl, errLineBreak, v)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("template %q: value is not valid UTF-8", tmpl)
	}
	if i := strings.IndexFunc(v, isControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(v[i:])
		return fmt.Errorf("template %q: value contains the control character %q", tmpl, r)
	}
	for _, w := range strings.Fields(v) {
		if len(w) > maxWord {
			return fmt.Errorf("template %q: a word of %d bytes is too long for a header line", tmpl, len(w))
		}
	}
	return nil
}

// isControl reports a control character other than the tab.
func isControl(r rune) bool { return r != '\t' && unicode.IsControl(r) }

// oneLine collapses every run of blanks (tabs included) in a header value
// to one space and trims it: go-mail folds only at spaces, so a tab run
// could make a line longer than 998 octets, and a run of spaces could make
// a continuation line of blanks alone (RFC 5322 section 3.2.2 forbids it).
func oneLine(v string) string {
	return strings.Join(strings.Fields(v), " ")
}

// parseMailbox parses one address and refuses display-name tricks that
// net/mail accepts but would make the envelope differ from the header.
func parseMailbox(what, s string) (*mail.Address, error) {
	if strings.ContainsAny(s, "\r\n\x00") {
		return nil, fmt.Errorf("%s %q: %w", what, s, errLineBreak)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", what, s, err)
	}
	if err := checkParsed(a); err != nil {
		return nil, fmt.Errorf("%s %q: %w", what, s, err)
	}
	return a, nil
}

// parseList parses an RFC 5322 address list (From, Reply-To, group To).
func parseList(what, s string) ([]*mail.Address, error) {
	if strings.ContainsAny(s, "\r\n\x00") {
		return nil, fmt.Errorf("%s %q: %w", what, s, errLineBreak)
	}
	l, err := mail.ParseAddressList(s)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", what, s, err)
	}
	for _, a := range l {
		if err := checkParsed(a); err != nil {
			return nil, fmt.Errorf("%s %q: %w", what, s, err)
		}
	}
	return l, nil
}

// checkParsed refuses a parsed address that would decode differently once
// written again. net/mail decodes the encoded-words of a display name, so
// a name that decodes to CR, LF or NUL would, encoded again, decode to
// them in every reader; other control characters are refused as in
// checkHeaderValue; and see checkAddrMarks.
func checkParsed(a *mail.Address) error {
	if strings.ContainsAny(a.Name, "\r\n\x00") {
		return fmt.Errorf("display name %q: %w", a.Name, errLineBreak)
	}
	if i := strings.IndexFunc(a.Name, isControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(a.Name[i:])
		return fmt.Errorf("display name %q contains the control character %q", a.Name, r)
	}
	return checkAddrMarks(a.Address)
}

// parseBare parses a recipient's bare addr-spec (the CSV email column).
func parseBare(s string) (string, error) {
	if strings.ContainsAny(s, "\r\n\x00<>") {
		return "", fmt.Errorf("address %q: must be a bare address without <>, CR or LF", s)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", s, err)
	}
	if a.Name != "" {
		return "", fmt.Errorf("address %q: must be a bare address", s)
	}
	if err := checkAddrMarks(a.Address); err != nil {
		return "", fmt.Errorf("address %q: %w", s, err)
	}
	return a.Address, nil
}

// checkAddrMarks refuses an address holding "=?" or "?=". Both are atext
// (RFC 5322 section 3.2.3), but Python's email decodes an encoded-word at
// the start of a local part, and a decoder run over the whole field
// (mime.WordDecoder.DecodeHeader) pairs a mark in the address with one in
// a display name: =?utf-8?q?=0D=0A?=@example.org would decode to CR LF.
func checkAddrMarks(addr string) error {
	if hasMark(addr) {
		return errors.New("contains =? or ?=, which mail readers take for an RFC 2047 encoded-word")
	}
	return nil
}

// Header values built from data are encoded so that decoding gives back
// exactly the data, the rule of RFC 2047 section 5 that the class of
// CVE-2024-6923 breaks: a value goes out as it is only when it is printable
// US-ASCII and holds nothing a decoder could take for an encoded-word;
// anything else, an ASCII look-alike such as
// =?UTF-8?Q?Eve=0D=0ABcc:_spy@evil.example?= included, is encoded whole.
// go-mail's SetGenHeader encodes only non-ASCII, so render decides before.

// Line and encoded-word sizes: RFC 5322 section 2.1.1 asks for lines of
// at most 78 octets and requires at most 998 (CRLF not counted); RFC 2047
// section 2 allows at most 75 octets an encoded-word.
const (
	maxLine        = 78
	maxHardLine    = 998
	maxEncodedWord = 75
	// maxWordText is the room for encoded text in one word.
	maxWordText = maxEncodedWord - len(textWord) - len("?=")
	// maxWordBytes is what one B word holds, in bytes of the value.
	maxWordBytes = maxWordText / 4 * 3
	// textWord opens a Q word of unstructured text, spelled as
	// mime.QEncoding does for go-mail, so the words are the same.
	textWord = "=?UTF-8?q?"
	// phraseWord opens a word of a display name, spelled as
	// mail.Address.String does.
	phraseWord = "=?utf-8?q?"
	phraseB    = "=?utf-8?b?"
	upperhex   = "0123456789ABCDEF"
)

// looksEncoded reports whether s holds "=?" followed anywhere later by
// "?=". Go's mime.WordDecoder.DecodeHeader and Python's email decode
// encoded-words inside other text and inside quoted-strings, so the test is
// wider than the grammar of RFC 2047 section 2 on purpose.
func looksEncoded(s string) bool {
	i := strings.Index(s, "=?")
	return i >= 0 && strings.Contains(s[i+2:], "?=")
}

// hasMark reports whether s holds either half of an encoded-word, "=?" or
// "?=". A display name or an address shares its field with other names
// and addresses, where the other half could be, so it is held to this
// stricter test than a value that is its field's whole body.
func hasMark(s string) bool {
	return strings.Contains(s, "=?") || strings.Contains(s, "?=")
}

// printable reports whether s is printable US-ASCII, blanks included: the
// values mime.WordEncoder would leave alone.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' || c > '~') && c != '\t' {
			return false
		}
	}
	return true
}

// firstRoom is the room on the first line of field name for the start of
// its value, "Name: " taken, so that the line stays within 78 octets. The
// encoders size the first encoded-word to it, and the value is never
// folded right after the colon (see refoldHeaders), which Python's email
// would read as a leading blank of an unstructured value.
func firstRoom(name string) int {
	return maxLine - len(name) - len(": ")
}

// encodeText returns the value of an unstructured field (Subject, an
// extra header; RFC 2047 section 5(1)) as it is written: unchanged when it
// is printable ASCII without an encoded-word look-alike, else whole as Q
// encoded-words (see qWords), which go-mail then leaves alone. The first
// word takes at most room octets (firstRoom; maxEncodedWord when the value
// does not start a line), at least one character.
func encodeText(v string, room int) string {
	if printable(v) && !looksEncoded(v) {
		return v
	}
	return qWords(textWord, v, false, room)
}

// encodePhrase returns a display name that is not printable ASCII, or
// holds an encoded-word mark, in a form RFC 2047 section 5(3) allows in a
// phrase: one encoded-word when the name fits in one (see encodeRun);
// a longer name is cut at its blanks, its plain words kept as they are
// (see mixedPhrase). The fewer encoded-words stand next to each other the
// better: RFC 2047 section 6.2 has the blank between two of them dropped,
// but Python's email before cpython gh-128110 keeps it in a display name.
// room is what the first line leaves for the name (firstRoom), or
// maxEncodedWord when the name does not start the field.
func encodePhrase(name string, room int) string {
	if qLen(name, true) <= maxWordText || len(name) <= maxWordBytes {
		return encodeRun(name, room)
	}
	return mixedPhrase(name, room)
}

// encodeRun encodes s, part of a phrase, as encoded-words: one Q word when
// it fits in room, else one B word (which holds the most bytes) when that
// fits; failing both, one word that fits in 75 octets all the same, Q
// first, on a line a little over 78 octets, rather than two words side
// by side (see encodePhrase); and only then B words, the first sized to
// room.
func encodeRun(s string, room int) string {
	q := qLen(s, true)
	switch {
	case len(phraseWord)+q+len("?=") <= min(room, maxEncodedWord):
		return qWords(phraseWord, s, true, room)
	case len(s) <= maxWordBytes && len(phraseB)+base64.StdEncoding.EncodedLen(len(s))+len("?=") <= room:
		return bWords(phraseB, s, room)
	case q <= maxWordText:
		return qWords(phraseWord, s, true, maxEncodedWord)
	case len(s) <= maxWordBytes:
		return bWords(phraseB, s, maxEncodedWord)
	}
	return bWords(phraseB, s, room)
}

// mixedPhrase writes name as a phrase of runs: each run of plain words
// (printable ASCII without encoded-word marks) as atoms, or as one
// quoted-string when it holds a special, and each run of the other words
// as encoded-words (Q when one fits, else B). Readers put one blank
// between the runs (RFC 5322 section 3.2.5) and decode the runs, so the
// name comes back exactly. A name with blanks other than single spaces
// between words is encoded whole. room is for the first run (encodeRun).
func mixedPhrase(name string, room int) string {
	if name != strings.TrimSpace(name) || strings.Contains(name, "  ") || strings.ContainsAny(name, "\t") {
		return bWords(phraseB, name, room)
	}
	words := strings.Split(name, " ")
	var b strings.Builder
	for i := 0; i < len(words); {
		plain := printable(words[i]) && !hasMark(words[i])
		j := i + 1
		for j < len(words) && (printable(words[j]) && !hasMark(words[j])) == plain {
			j++
		}
		run := strings.Join(words[i:j], " ")
		if b.Len() > 0 {
			b.WriteByte(' ')
			room = maxEncodedWord
		}
		switch {
		case !plain:
			b.WriteString(encodeRun(run, room))
		case strings.IndexFunc(run, notAtext) < 0:
			b.WriteString(run)
		default:
			b.WriteString(quoteString(run))
		}
		i = j
	}
	return b.String()
}

// notAtext reports a rune that is neither atext (RFC 5322 section 3.2.3)
// nor the space between words.
func notAtext(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == ' ':
		return false
	}
	return !strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

// quoteString returns s, printable ASCII, as an RFC 5322 quoted-string.
func quoteString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 4)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// qSafe reports whether c stays as it is in Q-encoded text: in unstructured
// text every printable character but "=", "?" and "_" (as mime.QEncoding
// writes it); in a phrase only letters, digits and "!*+-/" (RFC 2047
// section 5(3)).
func qSafe(c byte, phrase bool) bool {
	if !phrase {
		return c > ' ' && c <= '~' && c != '=' && c != '?' && c != '_'
	}
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '!' || c == '*' || c == '+' || c == '-' || c == '/'
}

// qRune returns the bytes of the character at s[i] and their length as Q
// text: a space is "_", a safe byte itself, anything else =XX a byte.
func qRune(s string, i int, phrase bool) (size, encoded int) {
	if c := s[i]; c == ' ' || qSafe(c, phrase) {
		return 1, 1
	}
	_, size = utf8.DecodeRuneInString(s[i:])
	return size, 3 * size
}

// qLen is the length of s as Q text.
func qLen(s string, phrase bool) int {
	n := 0
	for i := 0; i < len(s); {
		size, enc := qRune(s, i, phrase)
		i += size
		n += enc
	}
	return n
}

// qWords writes s as Q encoded-words opened by open, each at most 75
// octets, split between characters (RFC 2047 section 5) and separated by
// a space: the words of mime.QEncoding for text, made here because it
// leaves printable ASCII, look-alikes included, unencoded. The first word
// takes at most room octets, at least one character.
func qWords(open, s string, phrase bool, room int) string {
	n := qLen(s, phrase)
	var b strings.Builder
	b.Grow(n + (n/maxWordText+2)*(len(open)+3))
	b.WriteString(open)
	limit := min(room-len(open)-len("?="), maxWordText) // encoded text of this word
	used := 0                                           // octets of encoded text in the current word
	for i := 0; i < len(s); {
		size, enc := qRune(s, i, phrase)
		if used+enc > limit && used > 0 {
			b.WriteString("?= ")
			b.WriteString(open)
			used, limit = 0, maxWordText
		}
		for _, c := range []byte(s[i : i+size]) {
			switch {
			case c == ' ':
				b.WriteByte('_')
			case qSafe(c, phrase):
				b.WriteByte(c)
			default:
				b.WriteByte('=')
				b.WriteByte(upperhex[c>>4])
				b.WriteByte(upperhex[c&0x0f])
			}
		}
		i += size
		used += enc
	}
	b.WriteString("?=")
	return b.String()
}

// bWords writes s as B encoded-words opened by open, each holding at most
// maxWordBytes of s, split between characters and separated by a space.
// The first word takes at most room octets, at least one character.
func bWords(open, s string, room int) string {
	var b strings.Builder
	words := (len(s)+maxWordBytes-1)/maxWordBytes + 1
	b.Grow(base64.StdEncoding.EncodedLen(len(s)) + words*(len(open)+3+3))
	var src [maxWordBytes]byte
	var dst [maxWordText]byte
	limit := min((room-len(open)-len("?="))/4*3, maxWordBytes) // bytes of s in this word
	for len(s) > 0 {
		n := min(len(s), limit)
		for n < len(s) && n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		if n <= 0 {
			// The first character is longer than the room: it goes
			// whole. Or s is not UTF-8 here: split anywhere.
			_, size := utf8.DecodeRuneInString(s)
			n = max(size, min(len(s), limit))
		}
		limit = maxWordBytes
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(open)
		copy(src[:], s[:n])
		m := base64.StdEncoding.EncodedLen(n)
		base64.StdEncoding.Encode(dst[:m], src[:n])
		b.Write(dst[:m])
		b.WriteString("?=")
		s = s[n:]
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func domainOf(addr string) string {
	return addr[strings.LastIndexByte(addr, '@')+1:]
}

// unsubscribeHeader builds the RFC 2369 List-Unsubscribe value from a
// rendered https URL and an optional mailto address (RFC 8058 requires the
// https URI for one-click). Both are refused unless they are plain ASCII URIs
// without blanks or angle brackets, so they cannot escape the <...>.
func unsubscribeHeader(rawURL, mailto string) (string, error) {
	if err := checkURI(rawURL); err != nil {
		return "", fmt.Errorf("url %q: %w", rawURL, err)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("url %q: %w", rawURL, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("url %q: must be an absolute https URL (RFC 8058)", rawURL)
	}
	v := "<" + rawURL + ">"
	if mailto != "" {
		m := "mailto:" + strings.TrimPrefix(mailto, "mailto:")
		if err := checkURI(m); err != nil {
			return "", fmt.Errorf("mailto %q: %w", mailto, err)
		}
		mu, err := url.Parse(m)
		if err != nil {
			return "", fmt.Errorf("mailto %q: %w", mailto, err)
		}
		if !strings.Contains(mu.Opaque, "@") {
			return "", fmt.Errorf("mailto %q: not an address", mailto)
		}
		v += ", <" + m + ">"
	}
	return v, nil
}

func checkURI(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > maxWord {
		return fmt.Errorf("%d bytes is too long for a header line", len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\r' || c == '\n' || c == 0:
			return errLineBreak
		case c <= ' ' || c >= 0x7f:
			return errors.New("contains a blank, control or non-ASCII character (use urlquery in the template)")
		case c == '<' || c == '>' || c == '"':
			return fmt.Errorf("contains %q", c)
		}
	}
	if hasMark(s) {
		// CSV values are percent-encoded; only the template can do this.
		return errors.New("contains =? or ?=, which mail readers take for an RFC 2047 encoded-word (percent-encode = or ?)")
	}
	return nil
}

// foldHeader folds the value of header name at its blanks so that lines
// stay within 78 octets where a blank allows (RFC 5322 section 2.1.1).
// The first line always carries the start of the value, unless name and
// the value's first word would pass the 998 octets RFC 5322 requires: a
// fold right after the colon reads as a leading blank of the value in
// Python's email. render writes the visible group of internationalised
// addresses with it (go-mail writes a preformatted header as it is), and
// refoldHeaders every field go-mail folded after the colon.
func foldHeader(name, value string) string {
	b := make([]byte, 0, len(value)+len(value)/32)
	return string(appendFolded(b, len(name)+len(": "), value))
}

// appendFolded appends value folded as foldHeader does to dst, line being
// the octets already on the first line ("Name: ").
func appendFolded[S string | []byte](dst []byte, line int, value S) []byte {
	for first := true; ; first = false {
		n := 0 // the word value[:n]
		for n < len(value) && value[n] != ' ' {
			n++
		}
		switch {
		case first && line+n > maxHardLine, !first && line+1+n > maxLine:
			dst = append(dst, "\r\n "...)
			line = 1
		case !first:
			dst = append(dst, ' ')
			line++
		}
		dst = append(dst, value[:n]...)
		line += n
		if n == len(value) {
			return dst
		}
		value = value[n+1:]
	}
}

// refoldHeaders folds again, with foldHeader's rule, each field of the
// message's header block whose first line ends at its colon: go-mail
// (v0.8.1, msgWriter.writeHeader) folds before a first word that does not
// fit its budget, which leaves "Subject:" alone on its line, and Python's
// email then reads the Subject with a leading blank. go-mail folds only by
// turning a space into CRLF and a space, so removing the CRLFs gives back
// the value exactly. data is changed in place, and its bytes are copied
// only when there is such a field; the header block ends at the first
// empty line.
func refoldHeaders(data []byte) []byte {
	end := bytes.Index(data, []byte("\r\n\r\n"))
	for i := 0; i < end; {
		eol := i + bytes.Index(data[i:end+2], []byte("\r\n"))
		next := eol + 2
		line := data[i:eol]
		if len(line) == 0 || isWSP(line[0]) || bytes.IndexByte(line, ':') != len(line)-1 || !isWSP(data[next]) {
			i = next
			continue
		}
		stop := next // the end of the field, its last CRLF included
		for isWSP(data[stop]) {
			stop += bytes.Index(data[stop:], []byte("\r\n")) + 2
		}
		var buf [512]byte
		folded := appendRefolded(buf[:0], line, data[next:stop])
		data = slices.Replace(data, i, stop, folded...)
		end += len(folded) - (stop - i)
		i += len(folded)
	}
	return data
}

// appendRefolded appends the field of first line nameColon ("Name:") and
// continuation lines cont (CRLFs included) to dst, unfolded and folded
// again by appendFolded.
func appendRefolded(dst, nameColon, cont []byte) []byte {
	var buf [512]byte
	value := buf[:0]
	for l := range bytes.SplitSeq(cont, []byte("\r\n")) {
		value = append(value, l...)
	}
	value = bytes.TrimLeft(value, " \t")
	dst = append(dst, nameColon...)
	dst = append(dst, ' ')
	dst = appendFolded(dst, len(nameColon)+1, value)
	return append(dst, "\r\n"...)
}

func isWSP(c byte) bool { return c == ' ' || c == '\t' }
