package sender

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"regexp"
	"strings"
	"syscall"
)

// Error is a failed SMTP or LMTP command or dial step. It is built from
// typed values (replies as *textproto.Error, network and TLS errors with
// errors.As), never by reading error strings, and it never holds a
// password: Text is the server's own reply text or a fixed explanation.
type Error struct {
	// Command names what failed: a dial step ("CONNECT", "greeting",
	// "EHLO" or "LHLO", "STARTTLS", "AUTH") or a command ("MAIL FROM",
	// "RCPT TO", "DATA", "BDAT", "RSET", "QUIT").
	Command string
	// Code is the reply code, or 0 when there was no reply (network error,
	// timeout, TLS failure, client-side refusal).
	Code int
	// Enhanced is the RFC 3463 enhanced status code, e.g. "5.1.1", if the
	// server sent one.
	Enhanced string
	// Text is the reply text without the codes.
	Text string
	// Temporary reports a failure worth retrying later: a 4xx reply or a
	// network error before the message was complete.
	Temporary bool
	// Err is the underlying error, if any: a *SizeError for a message
	// refused for its size.
	Err error

	fatal bool
	// unreachable marks a dial that never reached the relay's SMTP
	// service; see ErrUnreachable.
	unreachable bool
}

// ErrUnreachable is matched (errors.Is) by the *Error of a dial that never
// reached the relay's SMTP service: the connection was refused, found no
// route or did not open in time, the host name did not resolve, or no
// greeting came before Config.ConnectTimeout (the connection closed, or
// the server stayed silent), or the network broke the TLS handshake of
// implicit TLS. It is temporary and never fatal: the relay may come back,
// and nothing was sent. It is not matched by a relay that answered and
// refused (a reply such as "421 too busy" or "554 no service", which
// keeps its Code), nor by a TLS or certificate mismatch, which is fatal
// and names the setting that mends it. Pool.SendHooks returns such an
// error at once instead of retrying, so that the caller can pause its
// whole run rather than each message.
var ErrUnreachable = errors.New("the relay cannot be reached")

// Is reports whether e is the failure target stands for: ErrUnreachable
// for a relay that could not be reached.
func (e *Error) Is(target error) bool {
	return target == ErrUnreachable && e.unreachable
}

// SizeError is the cause (Error.Err) of a message refused for its size
// (RFC 1870): by the client before anything of the message was sent,
// when the relay's EHLO reply set a limit (SIZE <n>) below Size, or by
// the relay with 552 to MAIL FROM's SIZE=, or a 5.3.4 reply. Such a
// refusal is permanent for the message's recipients (Rejected) but not
// fatal: a smaller message may go. The same bytes would fail for anyone,
// which a caller can tell from Size and Limit.
type SizeError struct {
	// Size is the message's size in octets, as declared with SIZE=.
	Size int64
	// Limit is the relay's limit from its EHLO reply, 0 when it named
	// none.
	Limit int64
}

// Error prints like "the message is 41943040 bytes, over the relay's
// limit of 10485760 bytes (SIZE, RFC 1870)".
func (e *SizeError) Error() string {
	if e.Limit > 0 {
		return fmt.Sprintf("the message is %d bytes, over the relay's limit of %d bytes (SIZE, RFC 1870)", e.Size, e.Limit)
	}
	return fmt.Sprintf("the relay refused the message's size of %d bytes (RFC 1870)", e.Size)
}

// tooLarge reports whether e refuses a message for its size.
func (e *Error) tooLarge() bool {
	var se *SizeError
	return errors.As(e.Err, &se)
}

// Error prints like "RCPT TO: 550 5.1.1 no such user".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Command)
	b.WriteString(":")
	if e.Code != 0 {
		fmt.Fprintf(&b, " %d", e.Code)
	}
	if e.Enhanced != "" {
		b.WriteString(" " + e.Enhanced)
	}
	if e.Text != "" {
		b.WriteString(" " + e.Text)
	}
	if e.Code == 0 && e.Err != nil {
		if e.Text != "" {
			b.WriteString(":")
		}
		b.WriteString(" " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Reply returns the server reply carried by e.
func (e *Error) Reply() Reply { return Reply{Code: e.Code, Enhanced: e.Enhanced, Text: e.Text} }

// IsFatal reports whether err means the whole run must stop because every
// further message would fail the same way: a 5xx to the greeting, EHLO,
// MAIL FROM (but for a refused size, see SizeError) or AUTH, bad
// credentials, a TLS failure or a security mismatch (an implicit-TLS
// server met with starttls or none, a plaintext one with tls, an unknown
// certificate authority: Error.Text names the setting to change), a
// server that does not speak SMTP, or a server without STARTTLS when
// STARTTLS is required (no silent downgrade, RFC 3207 section 4). An
// unreachable relay (ErrUnreachable) is not fatal.
func IsFatal(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.fatal
}

// ConfigError is a Config that New refuses. Field is the setting's name
// as in the campaign file's smtp section ("host", "port", "security",
// "auth", "protocol", "ca_file", "helo", "username", "password"), so that
// a caller can attach the message to the line the user wrote.
type ConfigError struct {
	Field   string
	Message string
	// Err is the underlying error, if any (reading ca_file, say).
	Err error
}

// Error prints like "smtp: unknown security "ssl" (want starttls, tls or
// none)".
func (e *ConfigError) Error() string {
	if e.Err != nil {
		return "smtp: " + e.Message + ": " + e.Err.Error()
	}
	return "smtp: " + e.Message
}

// Unwrap returns the underlying error.
func (e *ConfigError) Unwrap() error { return e.Err }

// enhancedRE matches an RFC 3463 status code at the start of a reply.
var enhancedRE = regexp.MustCompile(`^([245])\.(\d{1,3})\.(\d{1,3})$`)

// parseReply splits reply text into the enhanced code and the rest. Lines
// of a multi-line reply are joined with spaces, each losing its repeated
// enhanced code (RFC 2034 section 4).
func parseReply(code int, msg string) Reply {
	lines := strings.Split(msg, "\n")
	r := Reply{Code: code}
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if first, rest, ok := strings.Cut(l, " "); ok && enhancedRE.MatchString(first) && int(first[0]-'0') == code/100 {
			if i == 0 {
				r.Enhanced = first
			}
			l = rest
		} else if enhancedRE.MatchString(l) && int(l[0]-'0') == code/100 {
			if i == 0 {
				r.Enhanced = l
			}
			l = ""
		}
		lines[i] = l
	}
	r.Text = strings.TrimSpace(strings.Join(lines, " "))
	return r
}

// replyError builds an Error for a reply code; 4xx is temporary.
func replyError(cmd string, r Reply, cause error) *Error {
	return &Error{
		Command: cmd, Code: r.Code, Enhanced: r.Enhanced, Text: r.Text,
		Temporary: r.Code/100 == 4, Err: cause,
	}
}

// wireError turns an error from a command into an *Error: a reply (a
// *textproto.Error) keeps its codes, anything else counts as a lost
// connection and is temporary.
func wireError(cmd string, err error) *Error {
	var te *textproto.Error
	if errors.As(err, &te) {
		return replyError(cmd, parseReply(te.Code, te.Msg), err)
	}
	return &Error{Command: cmd, Temporary: true, Err: err}
}

// hasReply reports whether err carries a server reply.
func (e *Error) hasReply() bool { return e.Code != 0 }

// isTransport reports a failure of the connection itself: closed, reset,
// timed out or cancelled. Such a failure is worth retrying on a new
// connection. A TLS alert from the server also arrives as a *net.OpError,
// so "any net.Error" would take a refused handshake for a network
// hiccup; the causes are matched one by one instead.
func isTransport(err error) bool {
	var errno syscall.Errno
	var dns *net.DNSError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.As(err, &errno) || errors.As(err, &dns)
}

// closedByPeer reports a connection the server ended: an EOF, or a
// reset (a write to a socket the server closed).
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE)
}

// isTLSError reports a TLS handshake or certificate failure found by the
// client. These never heal by retrying and must not fall back to
// plaintext.
func isTLSError(err error) bool {
	var (
		cve   *tls.CertificateVerificationError
		alert tls.AlertError
		rhe   tls.RecordHeaderError
		uae   x509.UnknownAuthorityError
		he    x509.HostnameError
		cie   x509.CertificateInvalidError
		ech   *tls.ECHRejectionError
	)
	return errors.As(err, &cve) || errors.As(err, &alert) || errors.As(err, &rhe) ||
		errors.As(err, &uae) || errors.As(err, &he) || errors.As(err, &cie) || errors.As(err, &ech)
}
