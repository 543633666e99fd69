// Package sender is the wire of mailrun: it delivers rendered messages over
// SMTP or LMTP and reports the outcome per recipient. It imports neither
// campaign nor render; it takes plain values (from string, to []string,
// msg []byte).
//
// The flow of one message:
//  1. New validates a Config (security, auth, protocol, CA file; no AUTH
//     without TLS except to loopback) and returns a Client.
//  2. NewPool shares at most Concurrency connections and one
//     golang.org/x/time/rate limiter between goroutines.
//  3. Pool.Send (or Pool.SendHooks, whose Start and Commit let the caller
//     journal its intent while the envelope is on the wire) splits the
//     recipients into transactions of MaxRcpt, waits for the limiter, and
//     takes an idle connection or dials one. A connection without
//     PIPELINING is checked with RSET first (Conn.Reset); a pipelining one
//     sends its RSET with its next group, and one found dead that way is
//     redialled without costing an attempt.
//  4. Client.Dial connects through go-mail v0.8.1: EHLO, STARTTLS
//     (mandatory, never downgraded) or implicit TLS, AUTH; LMTP uses
//     go-smtp's client instead (LHLO). A failed dial closes its socket,
//     which go-mail v0.8.1 leaks.
//  5. Conn.Send drives MAIL FROM, one RCPT TO per recipient and DATA itself,
//     so one rejected recipient does not sink the others; with PIPELINING
//     (RFC 2920) they go in one write and the replies are read in order;
//     with CHUNKING too (RFC 3030, sendChunked) the message goes in that
//     write as "BDAT <n> LAST", after the commit hook and a check that a
//     reused connection is alive (peekStale), and from then on a lost
//     connection leaves the message Unknown. It sets a deadline per
//     command and a longer one for the reply to the final "." or BDAT.
//     Replies become *Error values (Command, Code, Enhanced, Text).
//  6. Pool.Send retries recipients with temporary failures (4xx, lost
//     connection before the final ".") with exponential backoff and jitter,
//     re-sending only to those still deferred and holding no connection
//     while it waits; a 452 moves the rest to the next transaction at once.
//     No reply after the final "." is Unknown and never retried (RFC 1047).
//     IsFatal reports errors that must stop the run.
//  7. Pool.put keeps the connection for reuse, or closes it (QUIT) after
//     PerConnection messages or when it broke; Pool.Close ends the idle ones.
//
// Dir.Write is the preview path: it writes one .eml file atomically.
//
// With Config.Debug set, the conversation is written as "[n] C: "/"[n] S: "
// lines, n numbering the connection, with AUTH payloads and every form of
// the password removed.
package sender
