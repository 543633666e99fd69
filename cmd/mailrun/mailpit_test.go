package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The end-to-end send test talks to mailpit, an SMTP server written by
// other people, so the wire, STARTTLS, AUTH and MIME parsing are checked by
// code that shares nothing with mailrun. .ci/run starts it (.ci/mailpit.sh)
// and exports where it listens.

// mailpitCase says what mailpit must hold after one example was sent. The
// expectations are derived from the example's CSV by hand-written rules,
// not by mailrun's renderer, so a rendering bug cannot bless itself.
type mailpitCase struct {
	example string
	// from tells the examples apart in mailpit's shared store.
	from string
	// group: one message, the CSV addresses as Bcc, visible To groupTo.
	group   bool
	groupTo string
	subject func(row map[string]string) string
	// name is the To display name of an individual message.
	name func(row map[string]string) string
	// inline is an image that must arrive inline, referenced by cid: in
	// the HTML.
	inline string
	// attachment is the file, relative to the example folder, that must
	// arrive attached; nil means none.
	attachment func(row map[string]string) string
	// unsubscribe is the one-click URL that List-Unsubscribe must hold.
	unsubscribe func(row map[string]string) string
}

var mailpitCases = []mailpitCase{
	{
		example: "newsletter",
		from:    "news@acme.example",
		subject: func(r map[string]string) string { return r["first_name"] + ", what's new at Acme in November" },
		name:    func(r map[string]string) string { return r["first_name"] + " " + r["last_name"] },
		inline:  "logo.png",
		unsubscribe: func(r map[string]string) string {
			return "https://acme.example/unsubscribe/" + r["id"]
		},
	},
	{
		example:    "notification",
		from:       "billing@acme.example",
		subject:    func(r map[string]string) string { return "Your invoice " + r["invoice"] + " for November 2026" },
		name:       func(r map[string]string) string { return r["name"] },
		attachment: func(r map[string]string) string { return "invoices/" + r["invoice"] + ".pdf" },
	},
	{
		example: "group",
		from:    "dana@acme.example",
		group:   true,
		groupTo: "platform@acme.example",
		subject: func(map[string]string) string { return "Team offsite on Thursday 10 December" },
	},
}

// mailpitEnv is where .ci/mailpit.sh started mailpit.
type mailpitEnv struct {
	api, host, port, ca, user, password string
}

// mailpitFromEnv skips the test without a mailpit, except on CI, where a
// skipped end-to-end test would pass while proving nothing.
func mailpitFromEnv(t *testing.T) mailpitEnv {
	t.Helper()
	e := mailpitEnv{
		api:      strings.TrimRight(os.Getenv("MAILPIT_API"), "/"),
		ca:       os.Getenv("MAILPIT_CA"),
		user:     os.Getenv("MAILPIT_USER"),
		password: os.Getenv("MAILPIT_PASSWORD"),
	}
	if e.api == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("MAILPIT_API is unset but CI is set: .ci/run must start mailpit (source .ci/mailpit.sh) before make test")
		}
		t.Skip("MAILPIT_API is unset: start mailpit with `source .ci/mailpit.sh` to run the end-to-end send test")
	}
	var err error
	e.host, e.port, err = net.SplitHostPort(os.Getenv("MAILPIT_SMTP"))
	if err != nil {
		t.Fatalf("MAILPIT_SMTP %q: %v", os.Getenv("MAILPIT_SMTP"), err)
	}
	if e.host != "127.0.0.1" {
		t.Fatalf("MAILPIT_SMTP host is %q, want 127.0.0.1: tests talk to loopback only", e.host)
	}
	for name, v := range map[string]string{"MAILPIT_CA": e.ca, "MAILPIT_USER": e.user, "MAILPIT_PASSWORD": e.password} {
		if v == "" {
			t.Fatalf("%s is unset although MAILPIT_API is set", name)
		}
	}
	return e
}

// TestMailpitSend sends every example through mailpit over STARTTLS with
// AUTH and checks through mailpit's API that each message arrived with its
// subject, display name, inline image and attachments.
func TestMailpitSend(t *testing.T) {
	mp := mailpitFromEnv(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	api := &mailpitAPI{base: mp.api, c: &http.Client{Timeout: 10 * time.Second}}
	api.do(ctx, t, http.MethodDelete, "/api/v1/messages", nil)

	want := 0
	rowsOf := map[string][]map[string]string{}
	for _, tc := range mailpitCases {
		rows := e2eReadCSV(t, tc.example)
		rowsOf[tc.example] = rows
		if tc.group {
			want++
		} else {
			want += len(rows)
		}
		mailpitSendExample(ctx, t, mp, tc.example)
	}

	list := api.waitFor(ctx, t, want)
	if list.Total != want {
		t.Fatalf("mailpit holds %d messages, want %d (one per individual recipient, one per group)", list.Total, want)
	}
	for _, tc := range mailpitCases {
		t.Run(tc.example, func(t *testing.T) {
			dir := filepath.Join("..", "..", "examples", tc.example)
			var mine []mailpitSummary
			for _, m := range list.Messages {
				if strings.EqualFold(m.From.Address, tc.from) {
					mine = append(mine, m)
				}
			}
			if tc.group {
				checkGroup(ctx, t, api, tc, mine, rowsOf[tc.example])
				return
			}
			if len(mine) != len(rowsOf[tc.example]) {
				t.Fatalf("got %d messages from %s, want %d", len(mine), tc.from, len(rowsOf[tc.example]))
			}
			for _, row := range rowsOf[tc.example] {
				addr := row["email"]
				i := slices.IndexFunc(mine, func(m mailpitSummary) bool {
					return len(m.To) == 1 && strings.EqualFold(m.To[0].Address, addr)
				})
				if i < 0 {
					t.Errorf("<%s>: no message arrived", addr)
					continue
				}
				msg := api.message(ctx, t, mine[i].ID)
				checkIndividual(t, dir, tc, row, msg)
			}
		})
	}
}

// mailpitSendExample copies an example, points it at mailpit and sends it
// in-process with --debug, so the trace is checked for the password too.
func mailpitSendExample(ctx context.Context, t *testing.T, mp mailpitEnv, example string) {
	t.Helper()
	dir := t.TempDir()
	copyTree(t, filepath.Join("..", "..", "examples", example), dir)
	ca, err := os.ReadFile(mp.ca)
	if err != nil {
		t.Fatalf("read MAILPIT_CA: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mailpit-ca.pem"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	// The password stays in the environment variable .ci/mailpit.sh set:
	// the campaign file names the variable, never the secret.
	appendFile(t, filepath.Join(dir, "campaign.yaml"), fmt.Sprintf(`
smtp:
  host: %s
  port: %s
  security: starttls
  ca_file: mailpit-ca.pem
  username: %s
  password_env: MAILPIT_PASSWORD
`, mp.host, mp.port, mp.user))

	journal := filepath.Join(t.TempDir(), example+".journal")
	// Each connection writes its --debug trace from its own goroutine, so
	// the writers must be safe for concurrent use, as os.Stderr is.
	var stdout, stderr lockedBuffer
	code := run(ctx, []string{"send", dir, "--yes", "--debug", "--journal", journal}, strings.NewReader(""), &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("%s: send exit %d, want 0\nstdout:\n%s\nstderr:\n%s", example, code, stdout.String(), stderr.String())
	}
	plain := base64.StdEncoding.EncodeToString([]byte("\x00" + mp.user + "\x00" + mp.password))
	login := base64.StdEncoding.EncodeToString([]byte(mp.password))
	for _, out := range []string{stdout.String(), stderr.String()} {
		for _, secret := range []string{mp.password, plain, login} {
			if strings.Contains(out, secret) {
				t.Fatalf("%s: the SMTP password (or its AUTH encoding) appears in the output of send --debug", example)
			}
		}
	}
	if !strings.Contains(stderr.String(), "235 ") {
		t.Errorf("%s: the --debug trace shows no successful AUTH (235):\n%s", example, stderr.String())
	}
	if _, err := os.Stat(journal); err != nil {
		t.Errorf("%s: --journal %s: %v", example, journal, err)
	}
}

func checkIndividual(t *testing.T, dir string, tc mailpitCase, row map[string]string, msg mailpitMessage) {
	t.Helper()
	addr := row["email"]
	if got, want := msg.Subject, tc.subject(row); got != want {
		t.Errorf("<%s>: subject %q, want %q", addr, got, want)
	}
	if got, want := msg.To[0].Name, tc.name(row); got != want {
		t.Errorf("<%s>: To display name %q, want %q", addr, got, want)
	}
	if tc.inline != "" {
		checkInline(t, addr, filepath.Join(dir, tc.inline), msg)
	} else if len(msg.Inline) != 0 {
		t.Errorf("<%s>: %d inline parts, want none", addr, len(msg.Inline))
	}
	if tc.attachment != nil {
		file := tc.attachment(row)
		if len(msg.Attachments) != 1 {
			t.Fatalf("<%s>: %d attachments, want 1 (%s)", addr, len(msg.Attachments), file)
		}
		a := msg.Attachments[0]
		if got, want := a.FileName, filepath.Base(file); got != want {
			t.Errorf("<%s>: attachment file name %q, want %q", addr, got, want)
		}
		if got, want := a.ContentType, "application/pdf"; got != want {
			t.Errorf("<%s>: attachment type %q, want %q", addr, got, want)
		}
		if got, want := a.Checksums.SHA256, e2eSHA256(t, filepath.Join(dir, file)); got != want {
			t.Errorf("<%s>: attachment sha256 %s, want %s (the bytes of %s)", addr, got, want, file)
		}
	} else if len(msg.Attachments) != 0 {
		t.Errorf("<%s>: %d attachments, want none", addr, len(msg.Attachments))
	}
	if tc.unsubscribe != nil {
		if want := tc.unsubscribe(row); !slices.Contains(msg.ListUnsubscribe.Links, want) {
			t.Errorf("<%s>: List-Unsubscribe links %q, want one to be %q", addr, msg.ListUnsubscribe.Links, want)
		}
		// RFC 8058 section 3.1: one-click needs this exact value.
		if got, want := msg.ListUnsubscribe.HeaderPost, "List-Unsubscribe=One-Click"; got != want {
			t.Errorf("<%s>: List-Unsubscribe-Post %q, want %q", addr, got, want)
		}
	}
	if strings.TrimSpace(msg.Text) == "" || strings.TrimSpace(msg.HTML) == "" {
		t.Errorf("<%s>: want both a text and an HTML part, got text %d bytes, HTML %d bytes", addr, len(msg.Text), len(msg.HTML))
	}
}

var e2eCIDRef = regexp.MustCompile(`src="cid:([^"]+)"`)

// checkInline checks that the image arrived as the inline part the HTML
// refers to, byte for byte.
func checkInline(t *testing.T, addr, file string, msg mailpitMessage) {
	t.Helper()
	if len(msg.Inline) != 1 {
		t.Fatalf("<%s>: %d inline parts, want 1 (%s)", addr, len(msg.Inline), filepath.Base(file))
	}
	in := msg.Inline[0]
	m := e2eCIDRef.FindStringSubmatch(msg.HTML)
	if m == nil {
		t.Fatalf("<%s>: the HTML has no cid: image reference", addr)
	}
	if in.ContentID != m[1] {
		t.Errorf("<%s>: inline Content-ID %q, but the HTML refers to cid:%s", addr, in.ContentID, m[1])
	}
	if got, want := in.ContentType, "image/png"; got != want {
		t.Errorf("<%s>: inline type %q, want %q", addr, got, want)
	}
	if got, want := in.Checksums.SHA256, e2eSHA256(t, file); got != want {
		t.Errorf("<%s>: inline image sha256 %s, want %s (the bytes of %s)", addr, got, want, filepath.Base(file))
	}
}

func checkGroup(ctx context.Context, t *testing.T, api *mailpitAPI, tc mailpitCase, mine []mailpitSummary, rows []map[string]string) {
	t.Helper()
	if len(mine) != 1 {
		t.Fatalf("got %d messages from %s, want 1 group message", len(mine), tc.from)
	}
	msg := api.message(ctx, t, mine[0].ID)
	if got, want := msg.Subject, tc.subject(nil); got != want {
		t.Errorf("subject %q, want %q", got, want)
	}
	if len(msg.To) != 1 || msg.To[0].Address != tc.groupTo {
		t.Errorf("To %v, want only <%s>", msg.To, tc.groupTo)
	}
	// mailpit lists the envelope recipients missing from To and Cc as Bcc.
	var got, want []string
	for _, a := range msg.Bcc {
		got = append(got, strings.ToLower(a.Address))
	}
	for _, r := range rows {
		want = append(want, strings.ToLower(r["email"]))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Bcc recipients %q, want %q", got, want)
	}
}

// mailpitAPI is a small client for mailpit's REST API (/api/v1).
type mailpitAPI struct {
	base string
	c    *http.Client
}

type mailpitAddress struct {
	Name, Address string
}

type mailpitSummary struct {
	ID      string
	From    mailpitAddress
	To, Bcc []mailpitAddress
	Subject string
}

type mailpitList struct {
	Total    int              `json:"total"`
	Messages []mailpitSummary `json:"messages"`
}

type mailpitPart struct {
	FileName, ContentType, ContentID string
	Size                             int
	Checksums                        struct{ SHA256 string }
}

type mailpitMessage struct {
	mailpitSummary
	Text, HTML          string
	Inline, Attachments []mailpitPart
	ListUnsubscribe     struct {
		Links      []string
		HeaderPost string
	}
}

// do runs one request and decodes a JSON answer into out (when not nil).
func (a *mailpitAPI) do(ctx context.Context, t *testing.T, method, path string, out any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.c.Do(req)
	if err != nil {
		t.Fatalf("mailpit %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		t.Fatalf("mailpit %s %s: %v", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mailpit %s %s: %s: %s", method, path, resp.Status, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("mailpit %s %s: decode: %v", method, path, err)
		}
	}
}

func (a *mailpitAPI) message(ctx context.Context, t *testing.T, id string) mailpitMessage {
	t.Helper()
	var m mailpitMessage
	a.do(ctx, t, http.MethodGet, "/api/v1/message/"+id, &m)
	return m
}

// waitFor lists the messages until at least want have been stored. mailpit
// has answered 250 before send returns, but storing may trail the reply,
// so the poll is bounded by a count and by a deadline.
func (a *mailpitAPI) waitFor(ctx context.Context, t *testing.T, want int) mailpitList {
	t.Helper()
	const tries = 200
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var l mailpitList
	for range tries {
		l = mailpitList{}
		a.do(ctx, t, http.MethodGet, fmt.Sprintf("/api/v1/messages?limit=%d", want+50), &l)
		if l.Total >= want {
			return l
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("mailpit holds %d messages, want %d: %v", l.Total, want, ctx.Err())
		}
	}
	t.Fatalf("mailpit holds %d messages after %d polls, want %d", l.Total, tries, want)
	return l
}

// e2eReadCSV reads an example's recipients as column->value maps, with
// encoding/csv rather than mailrun's reader.
func e2eReadCSV(t *testing.T, example string) []map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "examples", example, "recipients.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s/recipients.csv: %v", example, err)
	}
	if len(recs) < 2 {
		t.Fatalf("%s/recipients.csv: %d records, want a header and recipients", example, len(recs))
	}
	var rows []map[string]string
	for _, rec := range recs[1:] {
		row := map[string]string{}
		for i, col := range recs[0] {
			row[strings.TrimSpace(col)] = strings.TrimSpace(rec[i])
		}
		rows = append(rows, row)
	}
	return rows
}

func e2eSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
