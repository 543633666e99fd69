// Package mailbox reads a bounce mailbox over IMAP (github.com/emersion/go-imap/v2)
// or POP3 (a small RFC 1939 client with STLS, RFC 2595, written here because
// no maintained Go library fits).
//
// The flow of one session:
//  1. Open checks the Config as Check does (defaults for port, security
//     and folder; security none only for loopback hosts; no CR/LF in any
//     value; a refused setting is a *ConfigError naming it), dials with implicit TLS or plain TCP, trusting the
//     system roots plus CAFile, upgrades with STARTTLS/STLS when asked (never
//     falling back to plaintext), logs in and, for IMAP, selects the folder.
//  2. List returns the messages present as Items: IMAP UIDs or POP3 UIDLs.
//  3. Fetch returns one message's raw bytes (IMAP BODY.PEEK[] keeps it
//     unread; POP3 RETR is dot-unstuffed).
//  4. Delete removes a message (IMAP: \Deleted + UID EXPUNGE; POP3: DELE),
//     Move files it in another IMAP folder, created when missing (POP3:
//     ErrNotSupported).
//  5. Close logs out; for POP3 only this QUIT commits deletions, so a session
//     that breaks midway deletes nothing.
//
// Errors name the protocol, address and user, never the password. The
// package imports nothing of mailrun; internal/dovecottest starts a
// private Dovecot for its tests.
package mailbox
