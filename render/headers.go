package render

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strings"
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
// line limit. tmpl names the template the value came from.
func checkHeaderValue(tmpl, v string) error {
	if strings.ContainsAny(v, "\r\n\x00") {
		return fmt.Errorf("template %q: %w: %q", tmpl, errLineBreak, v)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("template %q: value is not valid UTF-8", tmpl)
	}
	for _, w := range strings.Fields(v) {
		if len(w) > maxWord {
			return fmt.Errorf("template %q: a word of %d bytes is too long for a header line", tmpl, len(w))
		}
	}
	return nil
}

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
	return l, nil
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
	return a.Address, nil
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
	return nil
}

// foldHeader folds the value of header name at its blanks so that lines
// stay within 78 octets where a blank allows (RFC 5322 section 2.1.1),
// as go-mail does for the headers it writes itself: a preformatted header
// is written as it is, and a visible group of internationalised addresses
// made one line of thousands of octets, past the hard limit of 998.
func foldHeader(name, value string) string {
	const limit = 78
	var b strings.Builder
	b.Grow(len(value) + len(value)/32)
	line := len(name) + 2 // "Name: "
	for i, w := range strings.Split(value, " ") {
		if i > 0 {
			if line+1+len(w) > limit {
				b.WriteString("\r\n ")
				line = 1
			} else {
				b.WriteByte(' ')
				line++
			}
		}
		b.WriteString(w)
		line += len(w)
	}
	return b.String()
}
