package main

import (
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mailrun/mailrun/internal/postfixtest"
	"github.com/mailrun/mailrun/journal"
	"github.com/mailrun/mailrun/mailing"
)

// The end-to-end tests against Postfix send through the relay people
// really run, at its default settings (internal/postfixtest): STARTTLS,
// SASL through Dovecot, BDAT or DATA, virtual Maildirs. Postfix is
// installed by .ci/postfix.sh; without it the tests skip, except on CI.

// postfixCampaign copies the newsletter example, replaces its recipients
// with rows (the example's columns: email, first_name, last_name, id,
// plan) and points it at pf with chunking on or off; send is the body of a
// send section.
func postfixCampaign(t *testing.T, pf *postfixtest.Server, rows [][]string, chunking bool, send string) string {
	t.Helper()
	dir := copyExample(t, "newsletter")
	f, err := os.Create(filepath.Join(dir, "recipients.csv"))
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	if err := w.WriteAll(append([][]string{{"email", "first_name", "last_name", "id", "plan"}}, rows...)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(pf.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "postfix-ca.pem"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	// A file rather than an environment variable: t.Setenv would forbid
	// parallel tests.
	if err := os.WriteFile(filepath.Join(dir, "postfix-password"), []byte(pf.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := fmt.Sprintf(`
smtp:
  host: %s
  port: %d
  security: starttls
  ca_file: postfix-ca.pem
  username: %s
  password_file: postfix-password
  helo: client.test
  chunking: %v
`, pf.Host, pf.Port, pf.User, chunking)
	if send != "" {
		y += "send:\n" + send
	}
	appendFile(t, filepath.Join(dir, "campaign.yaml"), y)
	return dir
}

// postfixSend runs send with --debug and returns the result; the journal
// goes to journalPath. It fails the test if the output shows the SASL
// password, raw or as AUTH PLAIN or LOGIN carry it.
func postfixSend(t *testing.T, pf *postfixtest.Server, dir, journalPath string) result {
	t.Helper()
	r := mailrun(t, nil, "send", dir, "--yes", "--debug", "--journal", journalPath)
	b64 := base64.StdEncoding.EncodeToString
	for _, secret := range []string{pf.Password, b64([]byte(pf.Password)), b64([]byte("\x00" + pf.User + "\x00" + pf.Password))} {
		if strings.Contains(r.stdout, secret) || strings.Contains(r.stderr, secret) {
			t.Errorf("the SASL password (as %q) appears in the output of send --debug", secret)
		}
	}
	return r
}

// wantPath fails the test unless the --debug trace shows the client
// sending the message with BDAT (chunking) or DATA, and never the other,
// so each subtest proves that it took the path it names.
func wantPath(t *testing.T, r result, chunking bool) {
	t.Helper()
	use, not := "BDAT", "DATA"
	if !chunking {
		use, not = not, use
	}
	if !strings.Contains(r.stderr, "C: "+use) || strings.Contains(r.stderr, "C: "+not) {
		t.Errorf("with chunking %v, the --debug trace should show %s commands and no %s", chunking, use, not)
	}
}

// TestPostfixNewsletter sends the newsletter example through Postfix with
// BDAT (chunking on) and with DATA (chunking off), its recipients replaced
// by mailboxes of the test domain: every recipient gets exactly one
// message, and its bytes are those of the message preview writes for the
// same row, apart from what legitimately differs.
func TestPostfixNewsletter(t *testing.T) {
	t.Parallel()
	pf := postfixtest.Start(t)
	example := e2eReadCSV(t, "newsletter")
	next := 0
	for _, chunking := range []bool{true, false} {
		t.Run(fmt.Sprintf("chunking=%v", chunking), func(t *testing.T) {
			var rows [][]string
			var users []string
			for _, r := range example {
				u := pf.Users[next]
				next++
				users = append(users, u)
				rows = append(rows, []string{u, r["first_name"], r["last_name"], r["id"], r["plan"]})
			}
			dir := postfixCampaign(t, pf, rows, chunking, "")
			preview := t.TempDir()
			mailrun(t, nil, "preview", dir, "-o", preview).want(t, exitOK, "preview")

			jpath := filepath.Join(t.TempDir(), "send.journal")
			r := postfixSend(t, pf, dir, jpath)
			r.want(t, exitOK, "send")
			wantPath(t, r, chunking)
			if !strings.Contains(r.stderr, "S: 235 ") {
				t.Errorf("the --debug trace shows no successful AUTH (235)")
			}

			for _, u := range users {
				msgs := pf.Messages(t, u)
				if len(msgs) != 1 {
					t.Errorf("<%s>: got %d messages, want 1", u, len(msgs))
					continue
				}
				files, err := filepath.Glob(filepath.Join(preview, "*-"+u+".eml"))
				if err != nil || len(files) != 1 {
					t.Fatalf("<%s>: got preview files %v, %v, want one", u, files, err)
				}
				want, err := os.ReadFile(files[0])
				if err != nil {
					t.Fatal(err)
				}
				sameMessage(t, u, msgs[0], want)
			}
			if got := sum(pf.Counts(t)); got != next {
				t.Errorf("the mailboxes hold %d messages in all, want %d (one per recipient so far)", got, next)
			}
			rep, err := mailing.Latest(jpath)
			if err != nil {
				t.Fatal(err)
			}
			for _, en := range rep.Recipients {
				if en.Status != journal.Sent {
					t.Errorf("journal: <%s> is %s, want sent (%s)", en.Email, en.Status, en.Error)
				}
			}
		})
	}
}

// unknownList is a recipient list with unknown users of the test domain
// among valid ones.
type unknownList struct {
	name string
	rows int
	// unknown tells the rows (from 0) that hold an unknown user.
	unknown func(i int) bool
}

var unknownLists = []unknownList{
	// 15 among 40, one every two or three rows: a bulk list's dead
	// addresses, spread out.
	{"15 mixed among 40", 40, func(i int) bool {
		for at, gap := 2, 3; at < 40; at, gap = at+gap, 5-gap {
			if i == at {
				return true
			}
		}
		return false
	}},
	// Ten in a row, then valid ones: the unknown users together, as a
	// sorted list holds the addresses of a domain that went away.
	{"10 in a row", 25, func(i int) bool { return i >= 3 && i < 13 }},
}

// TestPostfixUnknownRecipients sends lists with unknown users of the test
// domain among valid ones, each over one connection (concurrency 1), with
// chunking on and off. Postfix at its defaults slows a client down after
// smtpd_soft_error_limit (10) errors made without delivering mail and
// drops it at smtpd_hard_error_limit (20); each unknown user costs two
// errors (its RCPT TO, then the message with no recipient left), and a
// delivered message starts the count anew. Whatever Postfix does, every
// valid recipient must get exactly one message, every unknown user must be
// failed with Postfix's 550 5.1.1, and nobody unknown: an unknown status
// makes a rerun skip a reader who never got the message.
func TestPostfixUnknownRecipients(t *testing.T) {
	t.Parallel()
	pf := postfixtest.Start(t)
	next := 0
	t.Run("lists", func(t *testing.T) {
		for _, list := range unknownLists {
			for _, chunking := range []bool{true, false} {
				var rows [][]string
				valid := map[string]bool{}
				for i := range list.rows {
					addr := fmt.Sprintf("gone%02d@%s", i, postfixtest.Domain)
					if !list.unknown(i) {
						addr = pf.Users[next]
						next++
						valid[addr] = true
					}
					rows = append(rows, []string{addr, "Reader", fmt.Sprintf("N%02d", i), fmt.Sprintf("r%02d", i), "free"})
				}
				t.Run(fmt.Sprintf("%s/chunking=%v", list.name, chunking), func(t *testing.T) {
					t.Parallel()
					checkUnknownList(t, pf, rows, valid, chunking)
				})
			}
		}
	})
	if got := sum(pf.Counts(t)); got != next {
		t.Errorf("the mailboxes hold %d messages in all, want %d (one per valid recipient)", got, next)
	}
}

// checkUnknownList sends rows to pf, valid holding the valid recipients,
// and checks the outcome for each.
func checkUnknownList(t *testing.T, pf *postfixtest.Server, rows [][]string, valid map[string]bool, chunking bool) {
	// One connection, so the refusals add up as on a small relay: with
	// several, each would see too few to reach the limits.
	dir := postfixCampaign(t, pf, rows, chunking, "  concurrency: 1\n")
	jpath := filepath.Join(t.TempDir(), "send.journal")
	r := postfixSend(t, pf, dir, jpath)
	r.want(t, exitFailed, "send with unknown users")
	wantPath(t, r, chunking)

	rep, err := mailing.Latest(jpath)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Recipients) != len(rows) {
		t.Errorf("journal: %d recipients, want %d", len(rep.Recipients), len(rows))
	}
	for _, en := range rep.Recipients {
		switch {
		case valid[en.Email] && en.Status != journal.Sent:
			t.Errorf("journal: valid <%s> (row %d) is %s, want sent: %s", en.Email, en.Row, en.Status, en.Error)
		case !valid[en.Email] && en.Status != journal.Failed:
			t.Errorf("journal: unknown user <%s> (row %d) is %s, want failed: %s", en.Email, en.Row, en.Status, en.Error)
		case !valid[en.Email] && (en.Reply == nil || en.Reply.Code != 550 || en.Reply.Enhanced != "5.1.1"):
			t.Errorf("journal: unknown user <%s> failed with reply %+v, want Postfix's 550 5.1.1", en.Email, en.Reply)
		}
	}
	if rep.Summary.Unknown != 0 {
		t.Errorf("journal: %d recipients unknown, want none", rep.Summary.Unknown)
	}
	for addr := range valid {
		if n := pf.Count(t, addr); n != 1 {
			t.Errorf("<%s>: got %d messages, want 1", addr, n)
		}
	}
	if t.Failed() {
		t.Logf("send stdout:\n%s", r.stdout)
	}
}

func sum(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// sameMessage fails the test unless the message Postfix delivered to addr
// is the previewed one, byte for byte, apart from what differs by design
// (comparable).
func sameMessage(t *testing.T, addr string, delivered, preview []byte) {
	t.Helper()
	// The preview is the wire form: CRLF line ends only. Postfix stores
	// lines without their CR, and virtual(8) writes LF to the Maildir.
	p := string(preview)
	if strings.Count(p, "\n") != strings.Count(p, "\r\n") || strings.Count(p, "\r") != strings.Count(p, "\r\n") {
		t.Errorf("<%s>: the preview has a bare CR or LF", addr)
	}
	got, err := comparable(string(delivered))
	if err != nil {
		t.Fatalf("<%s>: delivered message: %v", addr, err)
	}
	want, err := comparable(strings.ReplaceAll(p, "\r\n", "\n"))
	if err != nil {
		t.Fatalf("<%s>: preview: %v", addr, err)
	}
	if got == want {
		return
	}
	gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(gl), len(wl)); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Errorf("<%s>: the delivered message differs from the preview at line %d (of %d delivered, %d previewed, after normalizing):\ngot  %q\nwant %q\ndelivered:\n%s", addr, i+1, len(gl), len(wl), g, w, delivered)
			return
		}
	}
}

// traceFields are the header fields a relay and a delivery agent prepend
// (RFC 5321 section 4.4, and Postfix's virtual(8)).
var traceFields = []string{"return-path", "received", "delivered-to", "x-original-to"}

// variableFields are made anew for every rendering: preview and send
// cannot agree on them.
var variableFields = []string{"date", "message-id", "dkim-signature"}

var boundaryParam = regexp.MustCompile(`(?i)\bboundary="?([^";\s]+)"?`)

// comparable returns msg (LF line ends) without trace fields, with the
// values of Date, Message-ID and DKIM-Signature blanked, and with the
// MIME boundaries, which are random, renamed by order of appearance.
// Everything else, every other header byte and the whole body, is kept.
func comparable(msg string) (string, error) {
	head, body, ok := strings.Cut(msg, "\n\n")
	if !ok {
		return "", fmt.Errorf("no empty line after the header")
	}
	var fields []string // one field per element, continuation lines included
	for _, line := range strings.Split(head, "\n") {
		if (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) && len(fields) > 0 {
			fields[len(fields)-1] += "\n" + line
			continue
		}
		fields = append(fields, line)
	}
	var out []string
	for _, f := range fields {
		name, _, ok := strings.Cut(f, ":")
		if !ok {
			return "", fmt.Errorf("header line %q is not a field", f)
		}
		switch key := strings.ToLower(name); {
		case slices.Contains(traceFields, key):
			continue
		case slices.Contains(variableFields, key):
			f = name + ": (varies)"
		}
		out = append(out, f)
	}
	s := strings.Join(out, "\n") + "\n\n" + body
	var pairs []string
	seen := map[string]bool{}
	for _, m := range boundaryParam.FindAllStringSubmatch(s, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			pairs = append(pairs, m[1], fmt.Sprintf("BOUNDARY-%d", len(seen)))
		}
	}
	return strings.NewReplacer(pairs...).Replace(s), nil
}
