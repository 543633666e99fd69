package sender

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/net/idna"
)

// ErrNoSMTPUTF8 is wrapped by the error of an envelope address whose
// local part is not ASCII when the relay does not offer SMTPUTF8 (RFC
// 6531): a local part has no ASCII form to fall back on, unlike a domain,
// so such an address cannot be sent to that relay at all. Match it with
// errors.Is.
var ErrNoSMTPUTF8 = errors.New("the relay does not offer SMTPUTF8 (RFC 6531)")

// wireAddr returns addr as it goes into MAIL FROM or RCPT TO on this
// connection. An ASCII address, or any address when the relay offers
// SMTPUTF8 (which then goes on MAIL FROM, RFC 6531 section 3.4), goes as
// it is. Otherwise a non-ASCII domain goes in its A-label ("xn--") form
// (RFC 5890 section 2.3.2.1), mapped and checked by idna.Lookup (IDNA2008
// with the UTS 46 mapping), and a non-ASCII local part is an error
// wrapping ErrNoSMTPUTF8. A domain that idna refuses is an error wrapping
// idna's. The ASCII check comes first, so the common case costs one scan
// and no allocation.
func (cn *Conn) wireAddr(addr string) (string, error) {
	if cn.utf8 || isASCII(addr) {
		return addr, nil
	}
	// The domain follows the last "@": a quoted local part may hold one.
	at := strings.LastIndexByte(addr, '@')
	if at < 0 || !isASCII(addr[:at]) {
		return "", fmt.Errorf("%w, needed for the non-ASCII local part of <%s>", ErrNoSMTPUTF8, addr)
	}
	domain, err := idna.Lookup.ToASCII(addr[at+1:])
	if err != nil {
		return "", fmt.Errorf("domain of <%s> has no A-label form: %w", addr, err)
	}
	return addr[:at+1] + domain, nil
}

// wireFrom returns the envelope sender as it goes into MAIL FROM
// (checkAddr, then wireAddr). A sender that cannot go is a permanent,
// fatal *Error for "MAIL FROM" without a reply: every message of the run
// has it, so every one would fail the same way.
func (cn *Conn) wireFrom(from string) (string, *Error) {
	err := checkAddr(from)
	w := from
	if err == nil {
		w, err = cn.wireAddr(from)
	}
	if err != nil {
		return "", &Error{Command: "MAIL FROM", Err: err, fatal: true}
	}
	return w, nil
}

// envelope checks the recipients of res (checkAddr, then wireAddr),
// rejects those that cannot go to this relay, and returns the indexes of
// the others, whose RCPT TO goes out, and every address as it goes on the
// wire. wire is to itself unless an address had to change, so an ASCII
// envelope costs no allocation here. A rejected recipient gets a
// permanent *Error for "RCPT TO" without a reply: nothing was sent for
// it, and the others go on.
func (cn *Conn) envelope(res *Result, to []string) (sent []int, wire []string) {
	sent = make([]int, 0, len(to))
	wire = to
	copied := false
	for i, a := range to {
		err := checkAddr(a)
		w := a
		if err == nil {
			w, err = cn.wireAddr(a)
		}
		if err != nil {
			res.Rcpts[i].Status, res.Rcpts[i].Err = Rejected, &Error{Command: "RCPT TO", Err: err}
			continue
		}
		if w != a {
			if !copied {
				wire, copied = slices.Clone(to), true
			}
			wire[i] = w
		}
		sent = append(sent, i)
	}
	return sent, wire
}
