// Package sender is the wire of mailrun: it delivers rendered messages over
// SMTP or LMTP and reports the outcome per recipient. It imports neither
// campaign nor render; it takes plain values (from string, to []string,
// msg []byte). It speaks the protocol itself, over one net/textproto
// reader and one bufio writer per connection, for SMTP and LMTP alike.
//
// The flow of one message:
//  1. New validates a Config (Config.check, then Config.fill for the
//     defaults: DefaultPort, the host name for HELO, the timeouts
//     (ConnectTimeout, Timeout, DataTimeout); AUTH without TLS
//     only to a host IsLoopback accepts) and returns a Client; a refusal
//     is a *ConfigError naming the setting.
//  2. NewPool shares at most Concurrency connections and one
//     golang.org/x/time/rate limiter between goroutines.
//  3. Pool.Send (or Pool.SendHooks, whose Start and Commit let the caller
//     journal its intent while the envelope is on the wire) splits the
//     recipients into transactions of MaxRcpt, waits for the limiter, and
//     in Pool.transact takes an idle connection as it is, with no RSET,
//     or dials one (Pool.get). A reused connection found dead by its next
//     transaction's first step (staleConnError) is redialled without
//     costing an attempt.
//  4. Client.Dial runs the dial steps, each of which names its failure in
//     Error.Command: connect (TCP, and the handshake for implicit TLS)
//     and greeting (220), both within ConnectTimeout; a plaintext
//     greeting is first checked for TLS (firstBytes: a TLS record, or a
//     silence that a ClientHello breaks, speaksTLS); then hello (EHLO,
//     LHLO for LMTP; HELO when an SMTP server does not know EHLO),
//     startTLS when Security is starttls (mandatory, never downgraded;
//     EHLO again after it), authenticate (AUTH with the mechanism
//     pickMechanism chooses: PLAIN, LOGIN, CRAM-MD5 or XOAUTH2), and
//     ready, which records PIPELINING, CHUNKING, 8BITMIME, SMTPUTF8 and
//     SIZE with its limit. dialError and Client.tlsError classify failures
//     from typed values (*textproto.Error, network and TLS errors): a
//     relay never reached matches ErrUnreachable; a security mismatch or
//     an unknown certificate authority is fatal, its Text naming the
//     setting that mends it (tlsAdvice). A failed dial closes its socket.
//  5. Conn.Send puts the envelope in its wire form (wireFrom, envelope,
//     wireAddr): it rejects addresses checkAddr refuses; when the relay
//     offers SMTPUTF8 a non-ASCII address goes as it is, with SMTPUTF8 on
//     MAIL FROM (appendMailParams, RFC 6531 section 3.4); otherwise a
//     non-ASCII domain goes as A-labels (golang.org/x/net/idna,
//     idna.Lookup) and a non-ASCII local part, which has no ASCII form,
//     rejects its recipient before anything is sent for it
//     (ErrNoSMTPUTF8) or, in the sender, fails the message with a fatal
//     error. With SIZE (RFC 1870) MAIL FROM declares the message's size
//     (wireSize), and a message over the relay's limit is Rejected before
//     anything is sent (SizeError). It then runs the transaction one of
//     three ways. sendStepwise sends one command at a time; with
//     PIPELINING (RFC 2920) sendPipelined writes MAIL FROM, every RCPT TO
//     and DATA at once (writeGroup) and reads the replies in order
//     (rcptReplies, dataReply) before the dot-stuffed body (body); with
//     CHUNKING too (RFC 3030) sendChunked checks that a reused connection
//     is alive (reuseCheck: peekStale, and NOOP after idleProbe), runs
//     the commit hook, and writes the message with the group as "BDAT <n>
//     LAST" (writeChunked). chunkedReplies then reads how far the server
//     got: closed before it answered every command in front of BDAT, it
//     never took the message (chunkLost: Deferred); once they were
//     answered, or when a reply is late or out of step, the accepted
//     recipients are Unknown. A refused MAIL FROM classifies in
//     mailError. One rejected recipient does not sink the others. Both
//     ends of a message meet in settleMessage: one reply for SMTP, one
//     per accepted recipient for LMTP (RFC 2033). Each command and reply
//     has its own deadline, the reply to the end of the message a longer
//     one; replies become *Error values (Command, Code, Enhanced, Text).
//     A transaction that ended without a reply to its message (every
//     recipient refused, say) is followed by RSET at once (Conn.Reset); a
//     delivered one by nothing.
//  6. Pool.SendHooks retries recipients with temporary failures (4xx, lost
//     connection before the message was complete) with exponential
//     backoff and jitter, re-sending only to those still deferred and
//     holding no connection while it waits; a 452 moves the rest to the
//     next transaction at once. No reply after the message is Unknown and
//     never retried (RFC 1047). IsFatal reports errors that must stop the
//     run; an unreachable relay (ErrUnreachable) is returned at once,
//     unretried, for the caller to pause the run.
//  7. Pool.put keeps the connection for reuse, or closes it (Conn.Close,
//     QUIT) after PerConnection messages, once it took maxRefusals
//     refusals (Conn.spent), so that a relay's error limit never ends it,
//     or when it broke; Pool.Close ends the idle ones.
//
// Dir.Write is the preview path: it writes one .eml file atomically.
//
// With Config.Debug set, one tracer per connection writes the whole
// conversation, dial included, as "[n] C: "/"[n] S: " lines, n numbering
// the connection, for SMTP and LMTP alike; AUTH payloads are never
// written, and every form of the password is scrubbed from each line.
package sender
