// Package smtptest runs an in-process SMTP or LMTP server on 127.0.0.1 (or
// [::1]) for tests: real go-smtp on the wire, never a mock.
//
// The flow of a test:
//  1. Start(t, Options{...}) listens on 127.0.0.1:0 with optional STARTTLS
//     or implicit TLS (a certificate generated for the test, trusted through
//     CAFile) and optional mandatory AUTH (PLAIN, LOGIN, CRAM-MD5, XOAUTH2).
//     It offers SMTPUTF8 (RFC 6531) unless Options.NoSMTPUTF8, and SIZE
//     (RFC 1870) with Options.MaxMessageBytes as its limit.
//  2. RejectRcpt, RejectRcptTimes, FailCommand, DropAt, DropAfterData,
//     DropIdle and LMTPStatus inject replies and dropped connections;
//     FailCommand also refuses the greeting or EHLO. Options.ErrorLimit
//     ends a connection after that many refusals, with a 421 to the next
//     command (Postfix's smtpd_hard_error_limit) or, with
//     ErrorLimitSilent, without a word. A connection the server closed
//     runs none of the commands the client had pipelined behind it.
//  3. The code under test talks to Host():Port().
//  4. Messages, Deliveries, Sessions and MaxConcurrent report what the
//     server accepted; Envelopes every MAIL FROM and RCPT TO it received,
//     byte for byte, accepted or not, with the SMTPUTF8 parameter;
//     WaitClosed tells whether the client closed every connection it
//     opened; t.Cleanup closes the server.
package smtptest
