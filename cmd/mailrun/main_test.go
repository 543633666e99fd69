package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/internal/smtptest"
	"github.com/mailrun/mailrun/journal"
)

// TestMain lets a test run this test binary as the real mailrun (for kill
// -9 and Ctrl-C, which need a process of their own): with
// MAILRUN_TEST_MAIN=1 in its environment it runs main, which exits.
func TestMain(m *testing.M) {
	if os.Getenv("MAILRUN_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// result is what one mailrun command did.
type result struct {
	code           int
	stdout, stderr string
}

// mailrun runs the command in-process with stdin (nil: empty, not a
// terminal) and gives up after a minute, so that a hang fails the test.
func mailrun(t *testing.T, stdin io.Reader, args ...string) result {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut lockedBuffer
	code := run(ctx, args, stdin, &out, &errOut)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// lockedBuffer is a bytes.Buffer safe for concurrent writes, as os.Stdout
// and os.Stderr are: run hands stderr to every connection's debug trace
// and to the run's notices, which write from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// want fails the test unless the command exited with code.
func (r result) want(t *testing.T, code int, what string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: got exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", what, r.code, code, r.stdout, r.stderr)
	}
}

// copyExample copies examples/<name> into a new temporary folder.
func copyExample(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "..", "examples", name))); err != nil {
		t.Fatalf("copy example %s: %v", name, err)
	}
	return dir
}

// copyTree copies the folder src (an example) into dst.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

func appendFile(t testing.TB, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// csvRows counts the data rows of a CSV file.
func csvRows(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return len(recs) - 1
}

// parseEML reads a message file back with net/mail and returns its
// decoded Subject; it fails the test unless From, To or Bcc, Subject,
// Message-ID and a body are there.
func parseEML(t *testing.T, data []byte, name string) string {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if _, err := m.Header.AddressList("From"); err != nil {
		t.Errorf("%s: From: %v", name, err)
	}
	if _, err := m.Header.AddressList("To"); err != nil {
		t.Errorf("%s: To: %v", name, err)
	}
	if m.Header.Get("Message-Id") == "" {
		t.Errorf("%s: no Message-ID", name)
	}
	body, err := io.ReadAll(m.Body)
	if err != nil || len(body) == 0 {
		t.Errorf("%s: got body of %d bytes, %v, want one", name, len(body), err)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil || subj == "" {
		t.Errorf("%s: got Subject %q, %v, want one", name, subj, err)
	}
	return subj
}

// TestExamples checks and previews every example, so they cannot rot.
func TestExamples(t *testing.T) {
	paths, err := filepath.Glob("../../examples/*/campaign.yaml")
	if err != nil || len(paths) < 3 {
		t.Fatalf("got examples %v, %v, want at least 3", paths, err)
	}
	for _, p := range paths {
		dir := filepath.Dir(p)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			rows := csvRows(t, filepath.Join(dir, "recipients.csv"))
			r := mailrun(t, nil, "check", dir)
			r.want(t, exitOK, "check")
			if want := fmt.Sprintf("check: %d recipients, %d ok, 0 errors, 0 warnings, 0 suppressed\n", rows, rows); r.stdout != want {
				t.Errorf("check: got %q, want %q", r.stdout, want)
			}

			out := filepath.Join(t.TempDir(), "out")
			r = mailrun(t, nil, "preview", dir, "-o", out)
			r.want(t, exitOK, "preview")
			if !strings.HasPrefix(r.stdout, "preview: ") {
				t.Errorf("preview: got %q, want the summary line", r.stdout)
			}
			files, _ := filepath.Glob(filepath.Join(out, "*.eml"))
			want := rows
			if filepath.Base(dir) == "group" {
				want = 1
				if len(files) != 1 || filepath.Base(files[0]) != "group.eml" {
					t.Fatalf("got %v, want group.eml only", files)
				}
			}
			if len(files) != want {
				t.Fatalf("got %d .eml files, want %d", len(files), want)
			}
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if subj := parseEML(t, data, filepath.Base(f)); strings.Contains(subj, "{{") {
					t.Errorf("%s: got subject %q, want it rendered", filepath.Base(f), subj)
				}
			}
		})
	}
}

// problemLine is how check prints a problem: "file:line: field: message".
var problemLine = regexp.MustCompile(`^[^:\s]+:[0-9]+: [a-z_.0-9]+: .+$`)

func TestBadInput(t *testing.T) {
	t.Run("unknown key", func(t *testing.T) {
		dir := copyExample(t, "newsletter")
		appendFile(t, filepath.Join(dir, "campaign.yaml"), "colour: blue\n")
		r := mailrun(t, nil, "check", dir)
		r.want(t, exitUsage, "check")
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if !slices.ContainsFunc(lines, func(l string) bool {
			// Problems name the file as the command line named the campaign.
			return problemLine.MatchString(l) && strings.HasPrefix(l, filepath.Join(dir, "campaign.yaml")+":") && strings.Contains(l, ": colour: unknown key")
		}) {
			t.Errorf("check: got\n%s\nwant a line campaign.yaml:N: colour: unknown key", r.stdout)
		}
		out := filepath.Join(t.TempDir(), "out")
		r = mailrun(t, nil, "preview", dir, "-o", out)
		r.want(t, exitUsage, "preview")
		if files, _ := filepath.Glob(filepath.Join(out, "*.eml")); len(files) != 0 {
			t.Errorf("preview: got %d files, want none from a broken campaign", len(files))
		}
	})
	t.Run("bad row", func(t *testing.T) {
		dir := copyExample(t, "newsletter")
		appendFile(t, filepath.Join(dir, "recipients.csv"), "not-an-address,No,Body,x9,free\n")
		r := mailrun(t, nil, "check", dir)
		r.want(t, exitFailed, "check") // a row's problem, not the campaign's
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 2 || !problemLine.MatchString(lines[0]) ||
			!strings.HasPrefix(lines[0], filepath.Join(dir, "recipients.csv")+`:7: email: invalid address "not-an-address"`) {
			t.Errorf("check: got\n%s\nwant recipients.csv:7: email: invalid address ... and the summary", r.stdout)
		}
		if !strings.Contains(r.stdout, "check: 6 recipients, 5 ok, 1 error") {
			t.Errorf("check: got\n%s\nwant the summary of 6 rows, 1 error", r.stdout)
		}

		out := filepath.Join(t.TempDir(), "out")
		r = mailrun(t, nil, "preview", dir, "-o", out)
		r.want(t, exitFailed, "preview")
		if !strings.Contains(r.stdout, "recipients.csv:7: email: invalid address") {
			t.Errorf("preview: got\n%s\nwant the bad row reported", r.stdout)
		}
		files, _ := filepath.Glob(filepath.Join(out, "*.eml"))
		if len(files) != 5 {
			t.Errorf("preview: got %d files, want the 5 good rows", len(files))
		}
	})
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{nil, {"nonsense"}, {"check"}, {"preview", "x"}, {"report", "a", "b"}} {
			if r := mailrun(t, nil, args...); r.code != exitUsage || r.stderr == "" {
				t.Errorf("mailrun %q: got exit %d and stderr %q, want %d and a message", args, r.code, r.stderr, exitUsage)
			}
		}
		mailrun(t, nil, "help").want(t, exitOK, "help")
	})
}

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	r := mailrun(t, nil, "init", dir)
	r.want(t, exitOK, "init")
	if !strings.Contains(r.stdout, "mailrun check "+dir) {
		t.Errorf("init: got %q, want the next command", r.stdout)
	}
	mailrun(t, nil, "check", dir).want(t, exitOK, "check of the new campaign")
	mailrun(t, nil, "preview", dir, "-o", filepath.Join(t.TempDir(), "out")).want(t, exitOK, "preview of the new campaign")

	before, err := os.ReadFile(filepath.Join(dir, "campaign.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r = mailrun(t, nil, "init", dir)
	r.want(t, exitUsage, "second init")
	if !strings.Contains(r.stderr, "refusing to overwrite") {
		t.Errorf("second init: got %q, want a refusal", r.stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "campaign.yaml")); !bytes.Equal(before, after) {
		t.Error("second init changed campaign.yaml")
	}
}

// testPassword is distinctive so that a leak is found by a plain search.
const (
	testPassword    = "Pw-unique-7Xq!93zz"
	testPasswordEnv = "MAILRUN_CMD_TEST_PASSWORD"
)

// newsletterAddrs are the recipients of examples/newsletter.
var newsletterAddrs = []string{"zoe@example.org", "juergen@example.net", "lilei@example.com", "olafur@example.is", "renee@example.fr"}

// sendEnv is an example copied into a temporary folder with an smtp
// section for an in-process server.
type sendEnv struct {
	dir string
	srv *smtptest.Server
}

// newSendEnv copies the example, starts a server with opt and appends an
// smtp section for it (CA copied into the folder, password through
// password_env) and send, the body of a send section.
func newSendEnv(t *testing.T, example string, opt smtptest.Options, send string) *sendEnv {
	t.Helper()
	dir := copyExample(t, example)
	if opt.Auth && opt.Password == "" {
		opt.Password = testPassword
	}
	srv := smtptest.Start(t, opt)
	security := map[string]string{"": "none", "starttls": "starttls", "tls": "tls"}[opt.TLS]
	y := fmt.Sprintf("\nsmtp:\n  host: 127.0.0.1\n  port: %d\n  security: %s\n  helo: client.test\n", srv.Port(), security)
	if srv.CAFile() != "" {
		pem, err := os.ReadFile(srv.CAFile())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "ca.pem"), pem, 0o600); err != nil {
			t.Fatal(err)
		}
		y += "  ca_file: ca.pem\n"
	}
	if opt.Auth {
		t.Setenv(testPasswordEnv, srv.Password())
		y += fmt.Sprintf("  username: %s\n  password_env: %s\n", srv.Username(), testPasswordEnv)
	}
	if send != "" {
		y += "send:\n" + send
	}
	appendFile(t, filepath.Join(dir, "campaign.yaml"), y)
	return &sendEnv{dir: dir, srv: srv}
}

// noSecrets fails the test if any form of the password (raw, or base64 as
// AUTH PLAIN, LOGIN or XOAUTH2 carry it) appears in the output.
func noSecrets(t *testing.T, r result, user string) {
	t.Helper()
	b64 := base64.StdEncoding.EncodeToString
	for _, s := range []string{
		testPassword,
		b64([]byte(testPassword)),
		b64([]byte("\x00" + user + "\x00" + testPassword)),
		b64([]byte(user + "\x00" + user + "\x00" + testPassword)),
		b64([]byte("user=" + user + "\x01auth=Bearer " + testPassword + "\x01\x01")),
	} {
		if strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s) {
			t.Errorf("the password (as %q) appears in the output:\nstdout:\n%s\nstderr:\n%s", s, r.stdout, r.stderr)
		}
	}
}

func (e *sendEnv) journalPath() string { return filepath.Join(e.dir, "november-news.journal") }

func TestSend(t *testing.T) {
	e := newSendEnv(t, "newsletter", smtptest.Options{TLS: "starttls", Auth: true}, "  concurrency: 2\n")
	user := e.srv.Username()

	// Without a terminal and without --yes: refuse, send nothing, even
	// when stdin says yes.
	r := mailrun(t, strings.NewReader("y\n"), "send", e.dir)
	r.want(t, exitUsage, "send without --yes")
	if !strings.Contains(r.stderr, "--yes") {
		t.Errorf("send without --yes: got stderr %q, want it to name --yes", r.stderr)
	}
	if n := len(e.srv.Messages()); n != 0 {
		t.Fatalf("send without --yes: got %d messages, want none", n)
	}

	// --test: one [TEST] message to the test address, no journal.
	r = mailrun(t, nil, "send", e.dir, "--test", "tester@example.com", "--debug")
	r.want(t, exitOK, "send --test")
	noSecrets(t, r, user)
	msgs := e.srv.Messages()
	if len(msgs) != 1 || !slices.Equal(msgs[0].To, []string{"tester@example.com"}) {
		t.Fatalf("send --test: got %d messages %v, want one to tester@example.com", len(msgs), msgs)
	}
	if subj := parseEML(t, msgs[0].Data, "test message"); !strings.HasPrefix(subj, "[TEST] Zoë,") {
		t.Errorf("send --test: got subject %q, want [TEST] and the first row's subject", subj)
	}
	if _, err := os.Stat(e.journalPath()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("send --test: got journal stat %v, want no journal", err)
	}

	// --yes --debug: everyone once, a trace on stderr, and no password.
	r = mailrun(t, nil, "send", e.dir, "--yes", "--debug")
	r.want(t, exitOK, "send --yes")
	noSecrets(t, r, user)
	if !strings.Contains(r.stderr, "C: STARTTLS") || !strings.Contains(r.stderr, "C: MAIL FROM:<news@acme.example>") {
		t.Errorf("send --debug: got stderr\n%s\nwant the SMTP conversation", r.stderr)
	}
	if !strings.Contains(r.stdout, "send: 5 rows: 5 to send") || !strings.Contains(r.stdout, "send: 5 sent, 0 failed, 0 deferred, 0 unknown, 0 skipped, 0 done before") {
		t.Errorf("send: got stdout\n%s\nwant the announcement and the summary", r.stdout)
	}
	for _, a := range newsletterAddrs {
		if n := e.srv.Deliveries(a); n != 1 {
			t.Errorf("<%s>: got %d deliveries, want 1", a, n)
		}
	}

	r = mailrun(t, nil, "status", e.dir)
	r.want(t, exitOK, "status")
	if !strings.Contains(r.stdout, "5 recipients: 5 sent, 0 failed, 0 deferred, 0 unknown, 0 skipped") {
		t.Errorf("status: got %q, want the counts", r.stdout)
	}

	r = mailrun(t, nil, "report", e.dir, "--format", "csv")
	r.want(t, exitOK, "report csv")
	rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil || len(rows) != 6 {
		t.Fatalf("report csv: got %d rows, %v, want a header and 5 rows:\n%s", len(rows), err, r.stdout)
	}
	var got []string
	for _, row := range rows[1:] {
		got = append(got, row[1])
		if row[2] != "sent" {
			t.Errorf("report csv: got %q, want status sent", row)
		}
	}
	if !slices.Equal(got, newsletterAddrs) {
		t.Errorf("report csv: got %v, want %v in row order", got, newsletterAddrs)
	}

	r = mailrun(t, nil, "report", e.dir, "--format", "json")
	r.want(t, exitOK, "report json")
	got = nil
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	for dec.More() {
		var en journal.Entry
		if err := dec.Decode(&en); err != nil {
			t.Fatalf("report json: %v\n%s", err, r.stdout)
		}
		if en.Status != journal.Sent || en.MessageID == "" {
			t.Errorf("report json: got %+v, want sent with a Message-ID", en)
		}
		got = append(got, en.Email)
	}
	if !slices.Equal(got, newsletterAddrs) {
		t.Errorf("report json: got %v, want %v", got, newsletterAddrs)
	}
	mailrun(t, nil, "report", e.dir, "--format", "xml").want(t, exitUsage, "report xml")

	// A rerun sends nothing and says why.
	r = mailrun(t, nil, "send", e.dir, "--yes")
	r.want(t, exitOK, "rerun")
	if !strings.Contains(r.stdout, "0 sent") || !strings.Contains(r.stdout, "5 done before") {
		t.Errorf("rerun: got %q, want 0 sent and 5 done before", r.stdout)
	}
	if n := len(e.srv.Messages()); n != 6 {
		t.Errorf("rerun: got %d messages in all, want still 6", n)
	}
}

func TestSendSecrets(t *testing.T) {
	e := newSendEnv(t, "newsletter", smtptest.Options{TLS: "starttls", Auth: true}, "")
	user := e.srv.Username()
	// The login as every mechanism would carry it, traced.
	for _, auth := range []string{"plain", "login", "cram-md5", "xoauth2"} {
		r := mailrun(t, nil, "send", e.dir, "--test", "tester@example.com", "--debug",
			"--smtp", fmt.Sprintf("smtp://%s@127.0.0.1:%d?auth=%s&helo=client.test", user, e.srv.Port(), auth))
		r.want(t, exitOK, "send --test with auth "+auth)
		noSecrets(t, r, user)
	}
	// A wrong password stops the run; the error names neither password.
	t.Setenv(testPasswordEnv, testPassword+"-wrong")
	r := mailrun(t, nil, "send", e.dir, "--yes", "--debug")
	if r.code == exitOK || !strings.Contains(r.stderr, "AUTH") {
		t.Errorf("wrong password: got exit %d, stderr\n%s\nwant a failure naming AUTH", r.code, r.stderr)
	}
	// The wrong password contains the right one, so noSecrets finds it too.
	noSecrets(t, r, user)
	// A password in a --smtp URL is refused without being echoed.
	r = mailrun(t, nil, "send", e.dir, "--yes", "--smtp", "smtp://"+user+":"+testPassword+"@127.0.0.1:1")
	r.want(t, exitUsage, "password in --smtp")
	noSecrets(t, r, user)
	if n := len(e.srv.Messages()); n != 4 {
		t.Errorf("got %d messages, want only the 4 test messages", n)
	}
}

func TestSendSMTPOverride(t *testing.T) {
	// The example has no smtp section; the relay comes from --smtp alone.
	dir := copyExample(t, "newsletter")
	srv := smtptest.Start(t, smtptest.Options{})
	r := mailrun(t, nil, "send", dir, "--yes")
	r.want(t, exitUsage, "send without a relay")
	if !strings.Contains(r.stderr, "--smtp") {
		t.Errorf("send without a relay: got %q, want a hint at --smtp", r.stderr)
	}
	r = mailrun(t, nil, "send", dir, "--yes", "--smtp", fmt.Sprintf("smtp://127.0.0.1:%d?security=none&helo=client.test", srv.Port()))
	r.want(t, exitOK, "send --smtp")
	if !strings.Contains(r.stdout, fmt.Sprintf("via smtp 127.0.0.1:%d (none, no AUTH)", srv.Port())) {
		t.Errorf("send --smtp: got %q, want the relay of the URL announced", r.stdout)
	}
	for _, a := range newsletterAddrs {
		if n := srv.Deliveries(a); n != 1 {
			t.Errorf("<%s>: got %d deliveries, want 1", a, n)
		}
	}
	mailrun(t, nil, "send", dir, "--yes", "--smtp", "ftp://127.0.0.1").want(t, exitUsage, "send --smtp ftp://")
}

func TestSendJournalFlag(t *testing.T) {
	e := newSendEnv(t, "newsletter", smtptest.Options{}, "")
	jpath := filepath.Join(t.TempDir(), "elsewhere.journal")
	r := mailrun(t, nil, "send", e.dir, "--yes", "--journal", jpath)
	r.want(t, exitOK, "send --journal")
	if !strings.Contains(r.stdout, "journal "+jpath) {
		t.Errorf("got %q, want the journal path announced", r.stdout)
	}
	if _, err := os.Stat(e.journalPath()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got default journal stat %v, want none", err)
	}
	r = mailrun(t, nil, "status", e.dir, "--journal", jpath)
	r.want(t, exitOK, "status --journal")
	if !strings.Contains(r.stdout, "5 recipients: 5 sent") {
		t.Errorf("status: got %q, want 5 sent", r.stdout)
	}
	r = mailrun(t, nil, "status", e.dir)
	r.want(t, exitOK, "status without a journal")
	if !strings.Contains(r.stdout, "no send yet") || !strings.Contains(r.stdout, "5 rows: 5 not yet sent") {
		t.Errorf("status without a journal: got %q, want no send yet and the list's size", r.stdout)
	}
}

func TestSendFailureExitCodes(t *testing.T) {
	e := newSendEnv(t, "newsletter", smtptest.Options{}, "")
	e.srv.RejectRcpt("lilei@example.com", 550, "5.1.1", "no such user")
	r := mailrun(t, nil, "send", e.dir, "--yes")
	r.want(t, exitFailed, "send with a rejected recipient")
	if !strings.Contains(r.stderr, "recipients.csv:4 <lilei@example.com>: send: failed") || !strings.Contains(r.stdout, "4 sent, 1 failed") {
		t.Errorf("got stdout %q, stderr %q, want the failed row and the counts", r.stdout, r.stderr)
	}

	e = newSendEnv(t, "newsletter", smtptest.Options{}, "")
	e.srv.FailCommand("MAIL", -1, 550, "5.7.1", "relay access denied")
	r = mailrun(t, nil, "send", e.dir, "--yes")
	r.want(t, exitUsage, "send refused by the relay")
	if !strings.Contains(r.stderr, "run stopped") || !strings.Contains(r.stderr, "550") {
		t.Errorf("got stderr %q, want the stop and the relay's reply", r.stderr)
	}

	// Another run holds the journal.
	e = newSendEnv(t, "newsletter", smtptest.Options{}, "")
	j, err := journal.Open(filepath.Join(e.dir, "november-news.journal"), journal.Header{Campaign: "november-news"}, campaign.AddrKey)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	r = mailrun(t, nil, "send", e.dir, "--yes")
	r.want(t, exitUsage, "send while the journal is locked")
	if !strings.Contains(r.stderr, "in use by another run") || len(e.srv.Messages()) != 0 {
		t.Errorf("got stderr %q and %d messages, want the lock named and nothing sent", r.stderr, len(e.srv.Messages()))
	}
}

// crashEnv is a newsletter with n generated recipients, sent at 40
// messages per second on 4 connections, so a subprocess runs long enough
// to be killed in the middle.
func newCrashEnv(t *testing.T, n int) (*sendEnv, []string) {
	t.Helper()
	e := newSendEnv(t, "newsletter", smtptest.Options{}, "  rate: 40/s\n  concurrency: 4\n")
	var b strings.Builder
	b.WriteString("email,first_name,last_name,id,plan\n")
	addrs := make([]string, n)
	for i := range n {
		addrs[i] = fmt.Sprintf("user%03d@example.org", i)
		fmt.Fprintf(&b, "%s,User,No%d,id%d,pro\n", addrs[i], i, i)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "recipients.csv"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return e, addrs
}

// proc is mailrun running as a process of its own.
type proc struct {
	cmd         *exec.Cmd
	done        chan struct{}
	out, errOut bytes.Buffer
}

// start runs this test binary as mailrun with args; stdin is /dev/null,
// not a terminal. The process is killed when the test ends.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	return startEnv(t, nil, args...)
}

// startEnv is start with env (KEY=value) added to the process's
// environment, after the test's own, so that it wins.
func startEnv(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: exec.Command(exe, args...), done: make(chan struct{})}
	p.cmd.Env = append(append(os.Environ(), env...), "MAILRUN_TEST_MAIN=1")
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.errOut
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// waitMessages polls until the server holds at least n messages, and fails
// the test if the process ends first or 20 seconds pass.
func (p *proc) waitMessages(t *testing.T, srv *smtptest.Server, n int) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for len(srv.Messages()) < n {
		select {
		case <-p.done:
			t.Fatalf("mailrun ended (%v) after %d messages, before %d\nstdout:\n%s\nstderr:\n%s",
				p.cmd.ProcessState, len(srv.Messages()), n, p.out.String(), p.errOut.String())
		case <-deadline:
			t.Fatalf("got %d messages after 20s, want %d", len(srv.Messages()), n)
		case <-tick.C:
		}
	}
}

// wait waits up to 20 seconds for the process to end and returns its exit
// code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(20 * time.Second):
		t.Fatal("mailrun did not end within 20s")
		return 0
	}
}

// unknowns returns the recipients the journal holds as unknown (an intent
// without an outcome reads as unknown).
func unknowns(t *testing.T, path string) map[string]bool {
	t.Helper()
	rep, err := journal.Latest(path, campaign.AddrKey)
	if err != nil {
		t.Fatalf("journal: %v", err)
	}
	u := map[string]bool{}
	for _, en := range rep.Recipients {
		if en.Status == journal.Unknown {
			u[campaign.AddrKey(en.Email)] = true
		}
	}
	return u
}

// finish drops the rate limit (which changes the campaign, hence --force)
// and runs send in-process to the end.
func finish(t *testing.T, e *sendEnv) result {
	t.Helper()
	path := filepath.Join(e.dir, "campaign.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bytes.Replace(data, []byte("  rate: 40/s\n"), nil, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	r := mailrun(t, nil, "send", e.dir, "--yes", "--force")
	r.want(t, exitOK, "send to the end")
	return r
}

func TestSendKill9(t *testing.T) {
	e, addrs := newCrashEnv(t, 200)
	const concurrency = 4
	unknown := map[string]bool{}
	// Two crashes: the second one kills a rerun of a crashed run.
	for round := 1; round <= 2; round++ {
		before := len(e.srv.Messages())
		p := start(t, "send", e.dir, "--yes")
		p.waitMessages(t, e.srv, before+30)
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		p.wait(t)
		now := unknowns(t, e.journalPath())
		added := 0
		for a := range now {
			if !unknown[a] {
				added++
			}
		}
		if added > concurrency {
			t.Errorf("round %d: got %d new unknown recipients, want at most %d (the connections)", round, added, concurrency)
		}
		unknown = now
		if n := len(e.srv.Messages()); n >= len(addrs) {
			t.Fatalf("round %d: all %d messages went out before the kill; the test proves nothing", round, n)
		}
	}

	r := finish(t, e)
	if !strings.Contains(r.stdout, "done before") {
		t.Errorf("got %q, want the summary", r.stdout)
	}
	if u := unknowns(t, e.journalPath()); len(u) != len(unknown) {
		t.Errorf("got %d unknown after the last run, want the %d left by the kills", len(u), len(unknown))
	}
	for _, a := range addrs {
		n := e.srv.Deliveries(a)
		switch {
		case unknown[a] && n > 1:
			t.Errorf("<%s> (unknown): got %d deliveries, want at most 1", a, n)
		case !unknown[a] && n != 1:
			t.Errorf("<%s>: got %d deliveries, want exactly 1", a, n)
		}
	}
	delivered := 0
	for a := range unknown {
		delivered += e.srv.Deliveries(a)
	}
	t.Logf("%d unknown after two kills, %d of them delivered: %v", len(unknown), delivered, unknown)
}

func TestSendInterrupt(t *testing.T) {
	e, addrs := newCrashEnv(t, 200)
	p := start(t, "send", e.dir, "--yes")
	p.waitMessages(t, e.srv, 20)
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != exitInterrupted {
		t.Fatalf("got exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitInterrupted, p.out.String(), p.errOut.String())
	}
	sent := len(e.srv.Messages())
	if sent >= len(addrs) {
		t.Fatalf("all %d messages went out before the interrupt; the test proves nothing", sent)
	}
	if want := fmt.Sprintf("send: %d sent, 0 failed, 0 deferred, 0 unknown, 0 skipped, 0 done before", sent); !strings.Contains(p.out.String(), want) {
		t.Errorf("got stdout\n%s\nwant the summary %q", p.out.String(), want)
	}
	if !strings.Contains(p.errOut.String(), "interrupted; the journal is consistent") {
		t.Errorf("got stderr\n%s\nwant the interruption explained", p.errOut.String())
	}
	// The messages in flight finished: nobody is left unknown.
	if u := unknowns(t, e.journalPath()); len(u) != 0 {
		t.Errorf("got unknown recipients %v after Ctrl-C, want none", u)
	}

	r := finish(t, e)
	if want := fmt.Sprintf("send: %d sent, 0 failed, 0 deferred, 0 unknown, 0 skipped, %d done before", len(addrs)-sent, sent); !strings.Contains(r.stdout, want) {
		t.Errorf("got %q, want %q", r.stdout, want)
	}
	for _, a := range addrs {
		if n := e.srv.Deliveries(a); n != 1 {
			t.Errorf("<%s>: got %d deliveries, want exactly 1", a, n)
		}
	}
}
