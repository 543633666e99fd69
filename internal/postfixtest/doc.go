// Package postfixtest starts a private Postfix on 127.0.0.1 for end-to-end
// tests, so mailrun is tested against the relay people really run, at its
// default settings, rather than against a server of our own.
//
// The instance is a submission relay: STARTTLS required (a certificate
// made at start, trusted through CAFile), SASL through the auth socket of
// a private Dovecot, virtual Maildirs for the users of Domain, unknown
// users refused at RCPT TO with 550 5.1.1, and smtpd_soft_error_limit,
// smtpd_hard_error_limit and smtpd_error_sleep_time at Postfix's defaults.
// Its configuration is rendered from the templates in .ci/postfix/ at the
// root of the repository, which .ci/postfix.sh installs Postfix for.
//
// Flow of Start:
//  1. find postfix, its master and dovecot (binaries); skip the test when
//     one is missing or the test does not run as root, or fail it when the
//     CI environment variable is set, so CI cannot skip silently;
//  2. make a temporary folder with a certificate, the user tables and one
//     Maildir per user (prepare), and render main.cf and the Dovecot
//     configuration from .ci/postfix/ (render);
//  3. start Dovecot with nothing but its auth socket and wait for its
//     handshake (startAuth);
//  4. let "postfix check" create the queue directories, then run the
//     master in the foreground with smtpd on a free 127.0.0.1 port, and
//     wait for its 220 greeting (startPostfix), on a fresh port when the
//     chosen one was taken meanwhile;
//  5. kill every process group it started in t.Cleanup, registered as soon
//     as each runs.
//
// Start as a whole is bounded by startTimeout; past it Start kills what it
// started and skips the test, or fails it when CI is set.
//
// After the code under test has sent, Messages, Count and Counts read the
// Maildirs once the queue has drained (Wait), within drainTimeout.
package postfixtest
