package main

import (
	"bytes"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/internal/dovecottest"
	"github.com/mailrun/mailrun/internal/smtptest"
	"github.com/mailrun/mailrun/journal"
)

// The recipients of examples/newsletter the bounces are about: A and B
// bounce hard (A through an RFC 3464 report quoting its Message-ID, B
// through a qmail text naming only the address), C bounces soft. The other
// two recipients are never named.
const (
	hardA = "zoe@example.org"
	hardB = "lilei@example.com"
	softC = "olafur@example.is"
)

// bouncePasswordEnv holds the bounce mailbox password; it differs from the
// smtp section's variable so that each test sets only what it means to.
const bouncePasswordEnv = "MAILRUN_CMD_TEST_BOUNCE_PASSWORD"

// bounceEnv is examples/newsletter sent through an in-process SMTP server,
// with a bounces section for a private Dovecot whose mailbox holds the
// bounces of that send.
type bounceEnv struct {
	*sendEnv
	dv *dovecottest.Server
	// ids maps each recipient to the Message-ID (without <>) the journal
	// recorded for the message sent to it.
	ids map[string]string
	// raw maps each delivered bounce's name to its bytes, as delivered.
	raw map[string][]byte
	// journal is the journal file as it was right after the send.
	journal []byte
}

// bouncesYAML is the bounces section plus the suppress list it writes to.
// The campaign file is complete before the first send: a later edit would
// change its fingerprint, and send refuses a changed campaign without
// --force.
const bouncesYAML = `suppress:
  - bounced.txt
bounces:
  protocol: %s
  host: 127.0.0.1
  port: %d
  security: tls
  ca_file: bounces-ca.pem
  username: %s
  password_env: %s
  after: %s
  write_to: bounced.txt
`

// newBounceEnv copies the newsletter, configures it for a fresh Dovecot
// over protocol with after, sends it to its five recipients, and delivers
// the bounces of that send (plus an auto-reply and a malformed bounce)
// into the Dovecot inbox.
func newBounceEnv(t *testing.T, protocol, after string) *bounceEnv {
	t.Helper()
	dv := dovecottest.Start(t)
	e := &bounceEnv{sendEnv: newSendEnv(t, "newsletter", smtptest.Options{}, ""), dv: dv}

	ca, err := os.ReadFile(dv.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	bounceWriteFile(t, filepath.Join(e.dir, "bounces-ca.pem"), string(ca))
	// An empty suppression file is valid; a missing one is a check error.
	bounceWriteFile(t, e.bouncedPath(), "")
	port := map[string]int{"imap": dv.IMAPS, "pop3": dv.POP3S}[protocol]
	appendFile(t, filepath.Join(e.dir, "campaign.yaml"), fmt.Sprintf(bouncesYAML, protocol, port, dv.User, bouncePasswordEnv, after))
	t.Setenv(bouncePasswordEnv, dv.Password)
	mailrun(t, nil, "check", e.dir).want(t, exitOK, "check of the campaign with a bounces section")

	r := mailrun(t, nil, "send", e.dir, "--yes")
	r.want(t, exitOK, "send")
	rep, err := journal.Latest(e.journalPath(), campaign.AddrKey)
	if err != nil {
		t.Fatal(err)
	}
	e.ids = map[string]string{}
	for _, en := range rep.Recipients {
		if en.Status != journal.Sent || en.MessageID == "" {
			t.Fatalf("journal after send: got %+v, want sent with a Message-ID", en)
		}
		e.ids[en.Email] = en.MessageID
	}
	if len(e.ids) != len(newsletterAddrs) {
		t.Fatalf("journal after send: got %d recipients, want %d", len(e.ids), len(newsletterAddrs))
	}
	if e.journal, err = os.ReadFile(e.journalPath()); err != nil {
		t.Fatal(err)
	}

	e.raw = map[string][]byte{
		"postfix-dsn": e.bounce(t, "postfix-dsn.eml.tmpl", hardA),
		"qmail":       e.bounce(t, "qmail.eml.tmpl", hardB),
		"delayed":     e.bounce(t, "delayed.eml.tmpl", softC),
		"autoreply":   readBounceSample(t, "autoreply.eml"),
		"malformed":   readBounceSample(t, "malformed.eml"),
	}
	for _, name := range []string{"postfix-dsn", "qmail", "delayed", "autoreply", "malformed"} {
		dv.Deliver(t, e.raw[name])
	}
	return e
}

func (e *bounceEnv) bouncedPath() string { return filepath.Join(e.dir, "bounced.txt") }

// bounce renders testdata/bounces/name for addr, quoting the headers of the
// message the SMTP server really received for addr, as an MTA quotes them
// in a bounce.
func (e *bounceEnv) bounce(t *testing.T, name, addr string) []byte {
	t.Helper()
	var sent []byte
	for _, m := range e.srv.Messages() {
		if slices.Contains(m.To, addr) {
			sent = m.Data
		}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(sent))
	if err != nil {
		t.Fatalf("message sent to <%s>: %v", addr, err)
	}
	if got, want := msg.Header.Get("Message-Id"), "<"+e.ids[addr]+">"; got != want {
		t.Fatalf("message sent to <%s>: got Message-ID %q, want the journal's %q", addr, got, want)
	}
	var h strings.Builder
	for _, k := range []string{"From", "To", "Subject", "Date", "Message-Id", "Mime-Version"} {
		fmt.Fprintf(&h, "%s: %s\n", k, msg.Header.Get(k))
	}
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "bounces", name))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, map[string]string{"Addr": addr, "Headers": h.String()}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// readBounceSample reads one of bounce's real-world samples.
func readBounceSample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "bounce", "testdata", "bounces", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func bounceWriteFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func bounceReadFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mailboxHolds fails the test unless folder holds exactly the named
// bounces, byte for byte.
func (e *bounceEnv) mailboxHolds(t *testing.T, what, folder string, names ...string) {
	t.Helper()
	var want [][]byte
	for _, n := range names {
		want = append(want, e.raw[n])
	}
	slices.SortFunc(want, bytes.Compare)
	got := e.dv.Messages(t, folder)
	if !slices.EqualFunc(got, want, bytes.Equal) {
		t.Errorf("%s: folder %q holds %d messages (subjects %q), want %v", what, folder, len(got), bounceSubjects(got), names)
	}
}

// bounceSubjects lists the raw Subject lines of messages, for failures.
func bounceSubjects(msgs [][]byte) []string {
	var out []string
	for _, m := range msgs {
		subj := "(none)"
		if msg, err := mail.ReadMessage(bytes.NewReader(m)); err == nil {
			subj = msg.Header.Get("Subject")
		}
		out = append(out, subj)
	}
	return out
}

// wantBounced fails the test unless exactly A and B are bounced, for
// the message they were sent, and the others are still sent.
func (e *bounceEnv) wantBounced(t *testing.T, path string) {
	t.Helper()
	rep, err := journal.Latest(path, campaign.AddrKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Recipients) != len(newsletterAddrs) {
		t.Errorf("journal: got %d recipients, want %d", len(rep.Recipients), len(newsletterAddrs))
	}
	for _, en := range rep.Recipients {
		want := journal.Sent
		if en.Email == hardA || en.Email == hardB {
			want = journal.Bounced
		}
		if en.Status != want {
			t.Errorf("journal: <%s>: got %s, want %s", en.Email, en.Status, want)
		}
		// The spelling is pinned by TestBouncesJournalRecord.
		if got := strings.Trim(en.MessageID, "<>"); got != e.ids[en.Email] {
			t.Errorf("journal: <%s>: got Message-ID %q, want %q", en.Email, en.MessageID, e.ids[en.Email])
		}
	}
	if s := rep.Summary; s.Sent != 3 || s.Bounced != 2 || s.Total() != 5 {
		t.Errorf("journal: got summary %+v, want 3 sent, 2 bounced", s)
	}
}

// bounceLine returns the one line of out that starts with prefix and contains
// all of parts, or fails the test.
func bounceLine(t *testing.T, out, prefix string, parts ...string) string {
	t.Helper()
	var found []string
	for l := range strings.Lines(out) {
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		t.Errorf("got %d lines starting %q with %q in\n%s\nwant 1", len(found), prefix, parts, out)
		return ""
	}
	return found[0]
}

// wantListing checks what bounces prints about the five messages: each
// finding once, then the totals. notBounceDone is what happened to the
// auto-reply ("moved", "would move", "kept"); dry says whether the run was
// a dry run.
func (e *bounceEnv) wantListing(t *testing.T, r result, notBounceDone string, dry bool) {
	t.Helper()
	bounceLine(t, r.stdout, "hard ", hardA, "5.1.1", "<"+e.ids[hardA]+">", "User unknown")
	if l := bounceLine(t, r.stdout, "hard ", hardB, "5.1.1", "no mailbox here"); strings.Contains(l, "<") {
		t.Errorf("hard <%s>: got %q, want no Message-ID: the qmail bounce quotes none", hardB, l)
	}
	bounceLine(t, r.stdout, "soft ", softC, "4.4.1", "<"+e.ids[softC]+">", "timed out")
	bounceLine(t, r.stdout, "not a bounce ", notBounceDone, "Out of Office")
	bounceLine(t, r.stdout, "error ", "kept", "malformed")
	for _, a := range []string{"juergen@example.net", "renee@example.fr"} {
		if strings.Contains(r.stdout, a) {
			t.Errorf("got\n%s\nwant nothing about <%s>, who did not bounce", r.stdout, a)
		}
	}
	prefix, verb := "", "added to"
	if dry {
		prefix, verb = "dry run: ", "would be added to"
	}
	bounceLine(t, r.stdout, prefix+"5 messages: 2 hard, 1 soft, 1 not a bounce, 1 with errors\n")
	bounceLine(t, r.stdout, prefix+"2 hard-bounced addresses "+verb+" ", "bounced.txt (duplicates skipped)\n")
	if n := strings.Count(r.stdout, "\n"); n != 7 {
		t.Errorf("got %d lines:\n%s\nwant 5 findings and 2 totals", n, r.stdout)
	}
}

func TestBouncesIMAP(t *testing.T) {
	e := newBounceEnv(t, "imap", "move")
	all := []string{"postfix-dsn", "qmail", "delayed", "autoreply", "malformed"}

	// A dry run reports everything and changes nothing. The malformed
	// message is an error there too, so the exit code is the same.
	r := mailrun(t, nil, "bounces", e.dir, "--dry-run")
	r.want(t, exitFailed, "bounces --dry-run")
	e.wantListing(t, r, "kept", true) // only recognised bounces are moved
	if got := bounceReadFile(t, e.bouncedPath()); got != "" {
		t.Errorf("bounces --dry-run: bounced.txt holds %q, want it empty", got)
	}
	if got := bounceReadFile(t, e.journalPath()); got != string(e.journal) {
		t.Errorf("bounces --dry-run changed the journal:\n%s", got)
	}
	e.mailboxHolds(t, "bounces --dry-run", "INBOX", all...)
	e.mailboxHolds(t, "bounces --dry-run", "Processed")

	// The real run. The malformed message stays for a human and makes
	// the exit code 1, like a send with a failed recipient.
	r = mailrun(t, nil, "bounces", e.dir)
	r.want(t, exitFailed, "bounces")
	e.wantListing(t, r, "kept", false)
	if got, want := bounceReadFile(t, e.bouncedPath()), hardB+"\n"+hardA+"\n"; got != want {
		t.Errorf("bounced.txt: got %q, want %q", got, want)
	}
	e.wantBounced(t, e.journalPath())
	r = mailrun(t, nil, "status", e.dir)
	r.want(t, exitOK, "status after bounces")
	if !strings.Contains(r.stdout, "5 recipients: 3 sent, 0 failed, 0 deferred, 0 unknown, 0 skipped, 2 bounced") {
		t.Errorf("status after bounces: got %q, want 3 sent and 2 bounced", r.stdout)
	}
	// Only recognised bounces are moved: the auto-reply stays for a person.
	e.mailboxHolds(t, "bounces", "INBOX", "autoreply", "malformed")
	e.mailboxHolds(t, "bounces", "Processed", "postfix-dsn", "qmail", "delayed")

	// A second run finds the auto-reply and the malformed message and
	// changes nothing.
	journalBefore := bounceReadFile(t, e.journalPath())
	r = mailrun(t, nil, "bounces", e.dir)
	r.want(t, exitFailed, "second bounces")
	bounceLine(t, r.stdout, "", "2 messages: 0 hard, 0 soft, 1 not a bounce, 1 with errors")
	if got, want := bounceReadFile(t, e.bouncedPath()), hardB+"\n"+hardA+"\n"; got != want {
		t.Errorf("second bounces: bounced.txt: got %q, want %q", got, want)
	}
	if got := bounceReadFile(t, e.journalPath()); got != journalBefore {
		t.Errorf("second bounces changed the journal:\n%s", got)
	}

	// A rerun of the send sends nobody anything: the journal holds every
	// recipient as settled, A and B as bounced.
	r = mailrun(t, nil, "send", e.dir, "--yes")
	r.want(t, exitOK, "send after bounces")
	if !strings.Contains(r.stdout, "send: 0 sent, 0 failed, 0 deferred, 0 unknown, 0 skipped, 5 done before") {
		t.Errorf("send after bounces: got %q, want 0 sent and 5 done before", r.stdout)
	}
	if !strings.Contains(r.stderr, "3 sent, 2 bounced") {
		t.Errorf("send after bounces: got stderr %q, want the 2 bounced named as settled", r.stderr)
	}
	// A send under a new journal has no memory of the first one: the
	// suppression file alone keeps A and B out.
	other := filepath.Join(t.TempDir(), "second.journal")
	r = mailrun(t, nil, "send", e.dir, "--yes", "--journal", other)
	r.want(t, exitOK, "send under a new journal")
	if !strings.Contains(r.stdout, "send: 3 sent, 0 failed, 0 deferred, 0 unknown, 2 skipped, 0 done before") {
		t.Errorf("send under a new journal: got %q, want 3 sent, 2 skipped", r.stdout)
	}
	for _, a := range newsletterAddrs {
		want := 2
		if a == hardA || a == hardB {
			want = 1
		}
		if n := e.srv.Deliveries(a); n != want {
			t.Errorf("<%s>: got %d deliveries, want %d", a, n, want)
		}
	}
	rep, err := journal.Latest(other, campaign.AddrKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range rep.Recipients {
		if (en.Email == hardA || en.Email == hardB) != (en.Status == journal.Skipped && en.Reason == "suppressed") {
			t.Errorf("second journal: got %+v, want only A and B skipped as suppressed", en)
		}
	}
}

func TestBouncesPOP3(t *testing.T) {
	e := newBounceEnv(t, "pop3", "delete")

	r := mailrun(t, nil, "bounces", e.dir, "--dry-run")
	r.want(t, exitFailed, "bounces --dry-run")
	e.wantListing(t, r, "kept", true)
	if got := bounceReadFile(t, e.bouncedPath()); got != "" {
		t.Errorf("bounces --dry-run: bounced.txt holds %q, want it empty", got)
	}
	if got := bounceReadFile(t, e.journalPath()); got != string(e.journal) {
		t.Errorf("bounces --dry-run changed the journal:\n%s", got)
	}
	e.mailboxHolds(t, "bounces --dry-run", "", "postfix-dsn", "qmail", "delayed", "autoreply", "malformed")

	// The bounces are deleted; the auto-reply (a person may need to read
	// it) and the malformed message stay.
	r = mailrun(t, nil, "bounces", e.dir)
	r.want(t, exitFailed, "bounces")
	e.wantListing(t, r, "kept", false)
	if got, want := bounceReadFile(t, e.bouncedPath()), hardB+"\n"+hardA+"\n"; got != want {
		t.Errorf("bounced.txt: got %q, want %q", got, want)
	}
	e.wantBounced(t, e.journalPath())
	e.mailboxHolds(t, "bounces", "", "autoreply", "malformed")
}

func TestBouncesWrongPassword(t *testing.T) {
	for _, proto := range []string{"imap", "pop3"} {
		t.Run(proto, func(t *testing.T) {
			// A Dovecot each: after a failed login Dovecot's anvil delays
			// the next attempt from the same address by seconds.
			dv := dovecottest.Start(t)
			dir := copyExample(t, "newsletter")
			ca, err := os.ReadFile(dv.CAFile)
			if err != nil {
				t.Fatal(err)
			}
			bounceWriteFile(t, filepath.Join(dir, "bounces-ca.pem"), string(ca))
			bounceWriteFile(t, filepath.Join(dir, "bounced.txt"), "")
			port := map[string]int{"imap": dv.IMAPS, "pop3": dv.POP3S}[proto]
			appendFile(t, filepath.Join(dir, "campaign.yaml"), fmt.Sprintf(bouncesYAML, proto, port, dv.User, bouncePasswordEnv, "keep"))
			// testPassword is distinctive, so noSecrets finds any leak.
			t.Setenv(bouncePasswordEnv, testPassword)

			r := mailrun(t, nil, "bounces", dir)
			r.want(t, exitUsage, "bounces with a wrong password")
			noSecrets(t, r, dv.User)
			if strings.Contains(r.stdout+r.stderr, dv.Password) {
				t.Errorf("the mailbox's real password appears in the output:\n%s\n%s", r.stdout, r.stderr)
			}
			where := fmt.Sprintf("%s 127.0.0.1:%d", proto, port)
			if !strings.Contains(r.stderr, where) || !strings.Contains(r.stderr, dv.User) {
				t.Errorf("got stderr %q, want it to name %s and the user %s", r.stderr, where, dv.User)
			}
			if r.stdout != "" {
				t.Errorf("got stdout %q, want nothing: no message was read", r.stdout)
			}
		})
	}
}

// TestBouncesJournalRecord: bounces writes one journal run for all bounced
// recipients, keeps each bounce's status, and spells Message-IDs as send
// does (without <>).
func TestBouncesJournalRecord(t *testing.T) {
	e := newBounceEnv(t, "imap", "keep")
	mailrun(t, nil, "bounces", e.dir).want(t, exitFailed, "bounces")
	rep, err := journal.Latest(e.journalPath(), campaign.AddrKey)
	if err != nil {
		t.Fatal(err)
	}
	// One command, one run record: cmd's marker calls
	// journal.MarkBounced once per recipient, each a run of its own
	// (and each reading the whole journal twice).
	if n := len(rep.Runs); n != 1 || rep.Runs[0].Command != "bounces" {
		t.Errorf("got runs %+v, want one bounces run after the send", rep.Runs)
	}
	wantDiag := map[string]string{hardA: "User unknown", hardB: "no mailbox here"}
	for _, en := range rep.Recipients {
		if en.Status != journal.Bounced {
			continue
		}
		// The status the bounce reported, for report and status.
		if en.Reply == nil || en.Reply.Enhanced != "5.1.1" || !strings.Contains(en.Reply.Text, wantDiag[en.Email]) {
			t.Errorf("<%s>: got reply %+v, want 5.1.1 and the diagnostic", en.Email, en.Reply)
		}
		// Spelled as send recorded it, without angle brackets.
		if en.MessageID != e.ids[en.Email] {
			t.Errorf("<%s>: got Message-ID %q, want %q", en.Email, en.MessageID, e.ids[en.Email])
		}
	}
}

// TestBouncesJournalLocked runs bounces while a send holds the journal:
// the hard bounces cannot be marked, so their messages stay in the mailbox
// for the next run, which marks them.
func TestBouncesJournalLocked(t *testing.T) {
	e := newBounceEnv(t, "imap", "move")
	j, err := journal.Open(e.journalPath(), journal.Header{Campaign: "november-news", Command: "send"}, campaign.AddrKey)
	if err != nil {
		t.Fatal(err)
	}
	r := mailrun(t, nil, "bounces", e.dir)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	r.want(t, exitFailed, "bounces while the journal is locked")
	bounceLine(t, r.stdout, "error ", "kept", "mark "+hardA+" bounced", "in use by another run")
	bounceLine(t, r.stdout, "error ", "kept", "mark "+hardB+" bounced", "in use by another run")
	bounceLine(t, r.stdout, "error ", "kept", "malformed")
	// The suppression file is written first, so no bounce is lost.
	if got, want := bounceReadFile(t, e.bouncedPath()), hardB+"\n"+hardA+"\n"; got != want {
		t.Errorf("bounced.txt: got %q, want %q", got, want)
	}
	if got := bounceReadFile(t, e.journalPath()); got != string(e.journal) {
		t.Errorf("bounces changed the locked journal:\n%s", got)
	}
	e.mailboxHolds(t, "bounces while locked", "INBOX", "postfix-dsn", "qmail", "autoreply", "malformed")
	e.mailboxHolds(t, "bounces while locked", "Processed", "delayed")

	r = mailrun(t, nil, "bounces", e.dir)
	r.want(t, exitFailed, "bounces after the lock is gone")
	bounceLine(t, r.stdout, "4 messages: 2 hard, 0 soft, 1 not a bounce, 1 with errors\n")
	if got, want := bounceReadFile(t, e.bouncedPath()), hardB+"\n"+hardA+"\n"; got != want {
		t.Errorf("bounced.txt after the second run: got %q, want %q (no duplicates)", got, want)
	}
	e.wantBounced(t, e.journalPath())
	e.mailboxHolds(t, "bounces after the lock is gone", "INBOX", "autoreply", "malformed")
	e.mailboxHolds(t, "bounces after the lock is gone", "Processed", "postfix-dsn", "qmail", "delayed")
}

// TestBouncesJournalFlag marks a journal kept away from the campaign,
// named by --journal.
func TestBouncesJournalFlag(t *testing.T) {
	e := newBounceEnv(t, "pop3", "keep")
	moved := filepath.Join(t.TempDir(), "elsewhere.journal")
	if err := os.Rename(e.journalPath(), moved); err != nil {
		t.Fatal(err)
	}
	r := mailrun(t, nil, "bounces", e.dir, "--journal", moved)
	r.want(t, exitFailed, "bounces --journal")
	e.wantListing(t, r, "kept", false)
	e.wantBounced(t, moved)
	if _, err := os.Stat(e.journalPath()); err == nil {
		t.Errorf("bounces --journal created the default journal %s", e.journalPath())
	}
	// after: keep leaves everything in place.
	e.mailboxHolds(t, "bounces --journal", "", "postfix-dsn", "qmail", "delayed", "autoreply", "malformed")
}
