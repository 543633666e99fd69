package sender

import (
	"fmt"
	"io"
	"time"
)

// Config describes one SMTP or LMTP relay and how to talk to it.
type Config struct {
	// Host is a name or an IP address; an IPv6 literal may be written
	// with or without brackets ("::1", "[::1]").
	Host string
	// Port zero means DefaultPort(Protocol, Security).
	Port int
	// Security is "starttls" (default; mandatory, never falls back to
	// plaintext), "tls" (implicit TLS, RFC 8314) or "none".
	Security string
	// CAFile is an optional PEM file of extra trusted CAs.
	CAFile   string
	Username string
	// Password is the secret itself; it never appears in errors or traces.
	Password string
	// Auth is auto, plain, login, cram-md5, xoauth2 or none; empty (and
	// auto) means auto with a Username and none without. auto takes the best of what
	// the server offers: PLAIN, then CRAM-MD5, then LOGIN over TLS, and
	// CRAM-MD5 first without TLS; it never guesses XOAUTH2, whose Password
	// is a bearer token.
	Auth string
	// HELO is the EHLO/LHLO name; empty means the host name.
	HELO string
	// Protocol is "smtp" (default) or "lmtp".
	Protocol string
	// ConnectTimeout bounds the start of a connection as a whole: the TCP
	// connect, the TLS handshake of implicit TLS and the server's
	// greeting; zero means 30s. A relay that does not greet in time is
	// unreachable (ErrUnreachable).
	ConnectTimeout time.Duration
	// Timeout bounds each later command and reply (EHLO, STARTTLS and
	// its handshake, AUTH, the transaction); zero means 60s.
	Timeout time.Duration
	// DataTimeout bounds the wait for the reply to the end of a message
	// (each reply, for LMTP); zero means 10 minutes (RFC 5321 section
	// 4.5.3.2.6).
	DataTimeout time.Duration
	// Debug, when set, receives the protocol trace with AUTH data redacted.
	Debug io.Writer
	// NoChunking keeps to DATA when the server offers CHUNKING. With
	// CHUNKING and PIPELINING a message goes in one write with its
	// envelope (BDAT, RFC 3030): one round trip instead of two, but a
	// reply that does not come in time after that write leaves the
	// message Unknown, where DATA would have known it was not sent (see
	// sendChunked).
	NoChunking bool
}

// PoolConfig shapes a Pool.
type PoolConfig struct {
	// Concurrency is the most simultaneous connections; zero means 1.
	Concurrency int
	// PerConnection is how many messages go over one connection before it
	// is closed and a new one opened; zero means unlimited.
	PerConnection int
	// Rate is messages per second shared by all connections; zero means no limit.
	Rate float64
	// Burst is the rate limiter's burst; zero means 1.
	Burst int
	// Retries is the number of attempts for temporary failures; zero means 1.
	Retries int
	// Backoff is the first retry delay, zero means 2s; it doubles with
	// jitter, capped.
	Backoff time.Duration
	// MaxRcpt is the most recipients per transaction; zero means 100.
	MaxRcpt int
}

// Status is the outcome for one recipient.
type Status int

// The outcomes of one recipient.
const (
	// Delivered: the server accepted the message for this recipient.
	Delivered Status = iota + 1
	// Rejected: a permanent (5xx) failure; do not retry.
	Rejected
	// Deferred: a temporary failure that outlived the retries.
	Deferred
	// Unknown: the message may have been delivered (RFC 1047). The
	// server accepted MAIL FROM and RCPT TO, and its reply to the end of
	// the message (the final "." or BDAT LAST) did not come; or, with
	// CHUNKING, where the message leaves with its envelope, a reply did
	// not come in time (the server may still be at work) or came out of
	// step. A 421, or a connection the server closed, before it answered
	// every command in front of the message is Deferred instead.
	Unknown
)

// Reply is one SMTP reply.
type Reply struct {
	Code     int    `json:"code,omitempty"`
	Enhanced string `json:"enhanced,omitempty"`
	Text     string `json:"text,omitempty"`
}

// RcptResult is the outcome for one envelope recipient.
type RcptResult struct {
	Addr   string
	Status Status
	Reply  Reply
	// Err is the typed error for a recipient that was not delivered.
	Err error
}

// Result is the outcome of one message, per recipient.
type Result struct {
	// Rcpts holds one entry per envelope recipient, in envelope order.
	Rcpts []RcptResult
	// Attempts is how many transactions were tried.
	Attempts int
}

// String returns the lower-case name a journal or report uses:
// "delivered", "rejected", "deferred" or "unknown".
func (s Status) String() string {
	switch s {
	case Delivered:
		return "delivered"
	case Rejected:
		return "rejected"
	case Deferred:
		return "deferred"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("status(%d)", int(s))
}
