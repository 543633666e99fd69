package main

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/internal/postfixtest"
	"github.com/mailrun/mailrun/journal"
	"github.com/mailrun/mailrun/mailing"
	"gopkg.in/yaml.v3"
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
	postfixRelay(t, pf, dir, chunking, send)
	return dir
}

// postfixRelay points the campaign in dir at pf: it copies the CA and the
// SASL password into dir and appends an smtp section with chunking on or
// off, and send, the body of a send section, unless empty.
func postfixRelay(t *testing.T, pf *postfixtest.Server, dir string, chunking bool, send string) {
	t.Helper()
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

// userPool hands out the valid users of a Postfix instance, each once, so
// that every mailbox holds what one recipient of one run was sent.
type userPool struct {
	pf   *postfixtest.Server
	next int
}

func (p *userPool) take(t *testing.T) string {
	t.Helper()
	if p.next >= len(p.pf.Users) {
		t.Fatalf("all %d users of the test domain are taken", len(p.pf.Users))
	}
	p.next++
	return p.pf.Users[p.next-1]
}

// TestPostfixExamples sends every example through one Postfix with BDAT
// (chunking on) and with DATA (chunking off), each address of the example
// rewritten to a mailbox of the test domain (postfixExample). Every
// recipient gets exactly one message, whose bytes are those of the message
// preview writes for the same campaign, apart from what legitimately
// differs (comparable); in group mode that is the one group message, in
// every recipient's mailbox.
func TestPostfixExamples(t *testing.T) {
	t.Parallel()
	paths, err := filepath.Glob(filepath.Join("..", "..", "examples", "*", "campaign.yaml"))
	if err != nil || len(paths) < 3 {
		t.Fatalf("got examples %v, %v, want at least 3", paths, err)
	}
	pf := postfixtest.Start(t)
	pool := &userPool{pf: pf}
	// envelope counts the messages Postfix must deliver in all: one per
	// recipient of each run.
	envelope := 0
	t.Run("examples", func(t *testing.T) {
		for _, p := range paths {
			example := filepath.Base(filepath.Dir(p))
			for _, chunking := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s/chunking=%v", example, chunking), func(t *testing.T) {
					// Users are taken in order, before the subtests run
					// side by side.
					dir, c, rcpts := postfixExample(t, pf, pool, example)
					envelope += len(rcpts)
					postfixRelay(t, pf, dir, chunking, "")
					t.Parallel()
					checkExampleDelivery(t, pf, dir, c, rcpts, chunking)
				})
			}
		}
	})
	if got := sum(pf.Counts(t)); got != envelope {
		t.Errorf("the mailboxes hold %d messages in all, want %d (one per recipient of each run; group.to is a header, not a recipient)", got, envelope)
	}
}

// checkExampleDelivery previews and sends the campaign in dir, whose
// recipients are rcpts, and checks what each mailbox received against the
// preview.
func checkExampleDelivery(t *testing.T, pf *postfixtest.Server, dir string, c *campaign.Campaign, rcpts []string, chunking bool) {
	t.Helper()
	preview := t.TempDir()
	mailrun(t, nil, "preview", dir, "-o", preview).want(t, exitOK, "preview")
	jpath := filepath.Join(t.TempDir(), "send.journal")
	r := postfixSend(t, pf, dir, jpath)
	r.want(t, exitOK, "send")
	wantPath(t, r, chunking)
	if !strings.Contains(r.stderr, "S: 235 ") {
		t.Errorf("the --debug trace shows no successful AUTH (235)")
	}

	group := c.Mode == "group"
	ids := map[string]bool{} // Message-IDs delivered
	for _, u := range rcpts {
		msgs := pf.Messages(t, u)
		if len(msgs) != 1 {
			t.Errorf("<%s>: got %d messages, want 1", u, len(msgs))
			continue
		}
		pattern := "*-" + u + ".eml"
		if group {
			pattern = "group.eml"
		}
		files, err := filepath.Glob(filepath.Join(preview, pattern))
		if err != nil || len(files) != 1 {
			t.Fatalf("<%s>: got preview files %v, %v, want one", u, files, err)
		}
		want, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		sameMessage(t, u, msgs[0], want)
		m, err := mail.ReadMessage(bytes.NewReader(msgs[0]))
		if err != nil {
			t.Fatalf("<%s>: %v", u, err)
		}
		ids[m.Header.Get("Message-Id")] = true
	}
	switch {
	case group && len(ids) != 1:
		t.Errorf("group mode: the recipients got %d different Message-IDs %v, want the one group message", len(ids), slices.Sorted(maps.Keys(ids)))
	case !group && len(ids) != len(rcpts):
		t.Errorf("got %d different Message-IDs for %d recipients, want one message each", len(ids), len(rcpts))
	}

	rep, err := mailing.Latest(jpath)
	if err != nil {
		t.Fatal(err)
	}
	var journaled []string
	for _, en := range rep.Recipients {
		journaled = append(journaled, en.Email)
		if en.Status != journal.Sent {
			t.Errorf("journal: <%s> is %s, want sent (%s)", en.Email, en.Status, en.Error)
		}
	}
	if !slices.Equal(slices.Sorted(slices.Values(journaled)), slices.Sorted(slices.Values(rcpts))) {
		t.Errorf("journal: got recipients %v, want %v", journaled, rcpts)
	}
}

// postfixExample copies the example and rewrites every address that
// Postfix would see, or that a reader would see as a recipient, to a user
// of the test domain taken from pool: the address column of the recipient
// list, whatever the example names it, and the addresses of group.to in
// group mode (a header, not an envelope recipient, but an address of a
// domain Postfix refuses has no place in a message it delivers). Every
// other column and setting is kept. It returns the folder, the campaign
// as loaded from it, and the envelope recipients in list order.
func postfixExample(t *testing.T, pf *postfixtest.Server, pool *userPool, example string) (string, *campaign.Campaign, []string) {
	t.Helper()
	dir := copyExample(t, example)
	c, err := campaign.Load(dir)
	if err != nil {
		t.Fatalf("load %s: %v", example, err)
	}
	rcpts := rewriteRecipients(t, c, pool)
	if c.Mode == "group" {
		rewriteGroupTo(t, c, pool)
	}
	// The rewritten campaign must still be the example: the same mode and
	// settings, with the new addresses.
	c, err = campaign.Load(dir)
	if err != nil {
		t.Fatalf("load %s after rewriting its addresses: %v", example, err)
	}
	if c.Mode == "group" {
		to, err := mail.ParseAddressList(c.Group.To)
		if err != nil {
			t.Fatalf("group.to after rewriting: %v", err)
		}
		for _, a := range to {
			if !slices.Contains(pf.Users, a.Address) {
				t.Fatalf("group.to after rewriting holds <%s>, not a user of the test domain", a.Address)
			}
		}
	}
	return dir, c, rcpts
}

// maxListRows bounds the recipient lists postfixExample rewrites: the
// examples are short, and the test domain has postfixtest.NumUsers users.
const maxListRows = postfixtest.NumUsers

// rewriteRecipients rewrites the address column of c's recipient list to
// users from pool, keeping the other columns, and returns the new
// addresses in list order. It reads the list as send does
// (campaign.OpenRecipients) and writes it back as UTF-8 with commas, so it
// refuses a list that sets another delimiter or encoding.
func rewriteRecipients(t *testing.T, c *campaign.Campaign, pool *userPool) []string {
	t.Helper()
	if d := c.Recipients.Delimiter; d != "" && d != "," {
		t.Fatalf("recipients.delimiter %q: postfixExample writes commas", d)
	}
	if e := strings.ToLower(c.Recipients.Encoding); e != "" && e != "utf-8" {
		t.Fatalf("recipients.encoding %q: postfixExample writes UTF-8", e)
	}
	list, err := campaign.OpenRecipients(c)
	if err != nil {
		t.Fatal(err)
	}
	defer list.Close()
	header, col := list.Header(), list.EmailColumn()
	records := [][]string{header}
	var rcpts []string
	for range maxListRows {
		rec, err := list.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s row %d: %v", c.Recipients.File, rec.Row, err)
		}
		u := pool.take(t)
		rcpts = append(rcpts, u)
		rec.Fields[col] = u
		var out []string
		for _, h := range header {
			out = append(out, rec.Fields[h])
		}
		records = append(records, out)
	}
	if len(rcpts) == 0 || len(records)-1 == maxListRows {
		t.Fatalf("%s: got %d rows, want between 1 and %d", c.Recipients.File, len(rcpts), maxListRows-1)
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.WriteAll(records); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.Dir(), c.Recipients.File), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return rcpts
}

// rewriteGroupTo replaces each address of group.to in c's file with a user
// from pool, keeping the display names and every other line, comments
// included.
func rewriteGroupTo(t *testing.T, c *campaign.Campaign, pool *userPool) {
	t.Helper()
	to, err := mail.ParseAddressList(c.Group.To)
	if err != nil || len(to) == 0 {
		t.Fatalf("group.to %q: got %d addresses, %v, want some", c.Group.To, len(to), err)
	}
	value := c.Group.To
	for _, a := range to {
		if !strings.Contains(value, a.Address) {
			t.Fatalf("group.to %q does not spell <%s> as is", c.Group.To, a.Address)
		}
		value = strings.Replace(value, a.Address, pool.take(t), 1)
	}
	data, err := os.ReadFile(c.Path())
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	node := yamlValue(&doc, "group", "to")
	if node == nil || node.Kind != yaml.ScalarNode {
		t.Fatalf("%s: no scalar group.to", c.Path())
	}
	node.Value, node.Style = value, yaml.DoubleQuotedStyle
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.Path(), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// yamlValue returns the node at the path of mapping keys in doc, or nil.
func yamlValue(doc *yaml.Node, keys ...string) *yaml.Node {
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	for _, k := range keys {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var found *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				found = n.Content[i+1]
			}
		}
		if found == nil {
			return nil
		}
		n = found
	}
	return n
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
