package mailing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/internal/smtptest"
	"github.com/mailrun/mailrun/journal"
	"github.com/mailrun/mailrun/sender"
)

// runPasswordEnv names the variable that carries the relay password in
// the send tests, as a real campaign's smtp.password_env would.
const runPasswordEnv = "MAILRUN_RUN_TEST_PASSWORD"

// newsletterAddrs are the recipients of examples/newsletter, in CSV order.
var newsletterAddrs = []string{"zoe@example.org", "juergen@example.net", "lilei@example.com", "olafur@example.is", "renee@example.fr"}

// runEnv is an example campaign copied into a temporary folder whose smtp
// section points at an in-process smtptest server.
type runEnv struct {
	t   *testing.T
	dir string
	srv *smtptest.Server
}

// newRunEnv copies examples/<example> into a temporary folder, starts a
// server with opt and appends an smtp section for it plus send, the body
// of a send section ("" for none). With TLS the server's certificate is
// copied into the folder as ca.pem (ca_file must stay inside the campaign);
// with AUTH the password travels through password_env.
func newRunEnv(t *testing.T, example string, opt smtptest.Options, send string) *runEnv {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "examples", example))); err != nil {
		t.Fatalf("copy example %s: %v", example, err)
	}
	srv := smtptest.Start(t, opt)
	security := map[string]string{"": "none", "starttls": "starttls", "tls": "tls"}[opt.TLS]
	yaml := fmt.Sprintf("\nsmtp:\n  host: %s\n  port: %d\n  security: %s\n  helo: client.test\n", srv.Host(), srv.Port(), security)
	if srv.CAFile() != "" {
		pem, err := os.ReadFile(srv.CAFile())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "ca.pem"), pem, 0o600); err != nil {
			t.Fatal(err)
		}
		yaml += "  ca_file: ca.pem\n"
	}
	if opt.Auth {
		t.Setenv(runPasswordEnv, srv.Password())
		yaml += fmt.Sprintf("  username: %s\n  password_env: %s\n", srv.Username(), runPasswordEnv)
	}
	if send != "" {
		yaml += "send:\n" + send
	}
	runAppend(t, filepath.Join(dir, "campaign.yaml"), yaml)
	return &runEnv{t: t, dir: dir, srv: srv}
}

func runAppend(t *testing.T, path, text string) {
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

// generatedAddrs writes n recipients in the newsletter's columns and
// returns their addresses.
func (e *runEnv) generatedAddrs(n int) []string {
	e.t.Helper()
	var b strings.Builder
	b.WriteString("email,first_name,last_name,id,plan\n")
	addrs := make([]string, n)
	for i := range n {
		addrs[i] = fmt.Sprintf("user%03d@example.org", i)
		fmt.Fprintf(&b, "%s,User,No%d,id%d,pro\n", addrs[i], i, i)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "recipients.csv"), []byte(b.String()), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return addrs
}

// campaign loads the campaign as it is on disk now.
func (e *runEnv) campaign() *campaign.Campaign {
	e.t.Helper()
	c, err := campaign.Load(e.dir)
	if err != nil {
		e.t.Fatalf("Load: %v", err)
	}
	return c
}

// pool is the real SMTP sender for c, closed when the test ends.
func (e *runEnv) pool(c *campaign.Campaign) *sender.Pool {
	e.t.Helper()
	cfg, pc, err := SenderConfig(c, nil)
	if err != nil {
		e.t.Fatalf("SenderConfig: %v", err)
	}
	cl, err := sender.New(cfg)
	if err != nil {
		e.t.Fatalf("sender.New: %v", err)
	}
	p := sender.NewPool(cl, pc)
	e.t.Cleanup(func() { p.Close() })
	return p
}

// run loads the campaign and runs it once with a fresh pool; it gives up
// after 30 seconds so that a hang fails instead of blocking. Notices are
// returned as out.
func (e *runEnv) run(ctx context.Context, opts SendOptions) (sum *SendSummary, out string, err error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := e.campaign()
	var buf bytes.Buffer
	opts.Out = &buf
	sum, err = Send(ctx, c, e.pool(c), opts)
	if sum == nil {
		e.t.Fatalf("Run returned no summary (err %v)", err)
	}
	return sum, buf.String(), err
}

// mustRun is run for a run that must succeed.
func (e *runEnv) mustRun(opts SendOptions) *SendSummary {
	e.t.Helper()
	sum, out, err := e.run(context.Background(), opts)
	if err != nil {
		e.t.Fatalf("Run: %v\n%s", err, out)
	}
	return sum
}

// journal returns the last entry of every recipient in the journal.
func (e *runEnv) journal() map[string]journal.Entry {
	e.t.Helper()
	rep, err := journal.Latest(filepath.Join(e.dir, e.campaign().Name+".journal"), campaign.AddrKey)
	if err != nil {
		e.t.Fatalf("journal: %v", err)
	}
	m := map[string]journal.Entry{}
	for _, en := range rep.Recipients {
		m[campaign.AddrKey(en.Email)] = en
	}
	return m
}

// wantStatus checks the journal status of every address.
func (e *runEnv) wantStatus(want map[string]journal.Status) {
	e.t.Helper()
	got := e.journal()
	for addr, st := range want {
		if got[addr].Status != st {
			e.t.Errorf("journal <%s>: got status %q, want %q (entry %+v)", addr, got[addr].Status, st, got[addr])
		}
	}
}

// wantDeliveries checks how many messages the server accepted per address.
func (e *runEnv) wantDeliveries(want map[string]int) {
	e.t.Helper()
	for addr, n := range want {
		if got := e.srv.Deliveries(addr); got != n {
			e.t.Errorf("<%s>: got %d deliveries, want %d", addr, got, n)
		}
	}
}

// allOf builds a map giving every address of addrs the value v.
func allOf[V any](addrs []string, v V) map[string]V {
	m := make(map[string]V, len(addrs))
	for _, a := range addrs {
		m[a] = v
	}
	return m
}

func TestRunIndividual(t *testing.T) {
	// STARTTLS with a CA from the campaign folder and AUTH: the
	// configuration of a real relay.
	e := newRunEnv(t, "newsletter", smtptest.Options{TLS: "starttls", Auth: true}, "  concurrency: 2\n")
	sum := e.mustRun(SendOptions{})
	if sum.Sent != 5 || sum.Failed+sum.Deferred+sum.Unknown+sum.Skipped+sum.Previously != 0 {
		t.Errorf("first run: got %+v, want 5 sent and nothing else", sum)
	}
	if sum.Journal != filepath.Join(e.dir, "november-news.journal") {
		t.Errorf("got journal %q, want november-news.journal in the campaign folder", sum.Journal)
	}
	e.wantDeliveries(allOf(newsletterAddrs, 1))
	e.wantStatus(allOf(newsletterAddrs, journal.Sent))
	for _, m := range e.srv.Messages() {
		if m.From != "news@acme.example" || len(m.To) != 1 {
			t.Errorf("got envelope %s -> %v, want news@acme.example to one recipient", m.From, m.To)
		}
	}
	for addr, en := range e.journal() {
		if en.MessageID == "" || en.Attempts != 1 || en.Reply == nil || en.Reply.Code != 250 {
			t.Errorf("journal <%s>: got %+v, want a Message-ID, 1 attempt and the 250 reply", addr, en)
		}
	}
	if !strings.Contains(sum.String(), "5 sent") {
		t.Errorf("got summary %q, want it to say 5 sent", sum.String())
	}

	sum, out, err := e.run(context.Background(), SendOptions{})
	if err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if sum.Sent != 0 || sum.Previously != 5 {
		t.Errorf("rerun: got %+v, want 0 sent and 5 done before", sum)
	}
	if sum.Earlier[journal.Sent] != 5 || len(sum.Earlier) != 1 {
		t.Errorf("rerun: got earlier outcomes %v (notices %q), want 5 sent", sum.Earlier, out)
	}
	e.wantDeliveries(allOf(newsletterAddrs, 1))
}

func TestRunRcptRejected(t *testing.T) {
	e := newRunEnv(t, "newsletter", smtptest.Options{}, "  concurrency: 2\n")
	bad := "juergen@example.net"
	// Once: the relay rejects the address in the first run only, so that
	// the RetryFailed run below can deliver it.
	e.srv.RejectRcptTimes(bad, 1, 550, "5.1.1", "no such user")
	sum, out, err := e.run(context.Background(), SendOptions{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if sum.Sent != 4 || sum.Failed != 1 {
		t.Errorf("got %+v, want 4 sent and 1 failed", sum)
	}
	if !strings.Contains(out, "recipients.csv:3 <juergen@example.net>: send: failed") {
		t.Errorf("got notices %q, want the failed row with its address", out)
	}
	en := e.journal()[bad]
	if en.Status != journal.Failed || en.Reply == nil || en.Reply.Code != 550 || en.Reply.Enhanced != "5.1.1" || en.Row != 3 {
		t.Errorf("journal: got %+v, want row 3 failed with 550 5.1.1", en)
	}
	want := allOf(newsletterAddrs, 1)
	want[bad] = 0
	e.wantDeliveries(want)

	sum = e.mustRun(SendOptions{})
	if sum.Sent+sum.Failed != 0 || sum.Previously != 5 {
		t.Errorf("rerun: got %+v, want nothing attempted and 5 done before", sum)
	}
	e.wantDeliveries(want)

	sum = e.mustRun(SendOptions{RetryFailed: true})
	if sum.Sent != 1 || sum.Previously != 4 {
		t.Errorf("retry-failed run: got %+v, want 1 sent and 4 done before", sum)
	}
	e.wantDeliveries(allOf(newsletterAddrs, 1))
	e.wantStatus(allOf(newsletterAddrs, journal.Sent))
}

func TestRunTemporaryFailureRetried(t *testing.T) {
	e := newRunEnv(t, "newsletter", smtptest.Options{}, "  concurrency: 2\n  backoff: 10ms\n")
	e.srv.RejectRcptTimes("lilei@example.com", 1, 450, "4.2.1", "mailbox busy")
	sum := e.mustRun(SendOptions{})
	if sum.Sent != 5 || sum.Deferred != 0 {
		t.Errorf("got %+v, want 5 sent", sum)
	}
	e.wantDeliveries(allOf(newsletterAddrs, 1))
	if en := e.journal()["lilei@example.com"]; en.Status != journal.Sent || en.Attempts != 2 {
		t.Errorf("journal: got %+v, want sent after 2 attempts", en)
	}
}

func TestRunTemporaryFailureDeferred(t *testing.T) {
	// A 4xx that outlives the retries is deferred, and a plain rerun tries
	// it again: its cause may be gone.
	e := newRunEnv(t, "newsletter", smtptest.Options{}, "  concurrency: 2\n  backoff: 1ms\n  retries: 2\n")
	e.srv.RejectRcptTimes("olafur@example.is", 2, 451, "4.3.0", "try later")
	sum := e.mustRun(SendOptions{})
	if sum.Sent != 4 || sum.Deferred != 1 {
		t.Errorf("got %+v, want 4 sent and 1 deferred", sum)
	}
	if en := e.journal()["olafur@example.is"]; en.Status != journal.Deferred || en.Reply == nil || en.Reply.Code != 451 {
		t.Errorf("journal: got %+v, want deferred with the 451 reply", en)
	}
	sum = e.mustRun(SendOptions{})
	if sum.Sent != 1 || sum.Previously != 4 {
		t.Errorf("rerun: got %+v, want 1 sent and 4 done before", sum)
	}
	e.wantDeliveries(allOf(newsletterAddrs, 1))
}

func TestRunUnknownAfterData(t *testing.T) {
	// One connection, so the dropped transaction is the first recipient's.
	e := newRunEnv(t, "newsletter", smtptest.Options{}, "  concurrency: 1\n  backoff: 1ms\n")
	e.srv.DropAfterData(1)
	first := newsletterAddrs[0]
	sum, out, err := e.run(context.Background(), SendOptions{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if sum.Unknown != 1 || sum.Sent != 4 {
		t.Errorf("got %+v, want 1 unknown and 4 sent", sum)
	}
	if !strings.Contains(out, "<"+first+">: send: unknown") {
		t.Errorf("got notices %q, want the unknown recipient named", out)
	}
	// The server kept the message although the client never heard so:
	// exactly why the outcome is unknown, not failed.
	e.wantDeliveries(allOf(newsletterAddrs, 1))
	want := allOf(newsletterAddrs, journal.Sent)
	want[first] = journal.Unknown
	e.wantStatus(want)

	sum, out, err = e.run(context.Background(), SendOptions{})
	if err != nil || sum.Sent != 0 || sum.Previously != 5 {
		t.Errorf("rerun: got %+v, %v, want nothing sent and 5 done before", sum, err)
	}
	if sum.Earlier[journal.Unknown] != 1 || sum.Earlier[journal.Sent] != 4 {
		t.Errorf("rerun: got earlier outcomes %v (notices %q), want 1 unknown and 4 sent", sum.Earlier, out)
	}
	e.wantDeliveries(allOf(newsletterAddrs, 1))

	sum = e.mustRun(SendOptions{ResendUnknown: true})
	if sum.Sent != 1 || sum.Previously != 4 {
		t.Errorf("resend-unknown run: got %+v, want 1 sent and 4 done before", sum)
	}
	again := allOf(newsletterAddrs, 1)
	again[first] = 2
	e.wantDeliveries(again)
	e.wantStatus(allOf(newsletterAddrs, journal.Sent))
}

func TestRunAbort(t *testing.T) {
	t.Run("mail from refused", func(t *testing.T) {
		e := newRunEnv(t, "newsletter", smtptest.Options{}, "  concurrency: 1\n")
		addrs := e.generatedAddrs(30)
		e.srv.FailCommand("MAIL", -1, 550, "5.7.1", "sender not allowed")
		sum, out, err := e.run(context.Background(), SendOptions{})
		var ae *AbortError
		if !errors.As(err, &ae) {
			t.Fatalf("got %v, want an *AbortError", err)
		}
		var se *sender.Error
		if !errors.As(err, &se) || se.Code != 550 || se.Command != "MAIL FROM" {
			t.Errorf("got %v, want it to wrap the MAIL FROM 550 reply", err)
		}
		if n := len(e.srv.Messages()); n != 0 || sum.Sent != 0 {
			t.Errorf("got %d messages, summary %+v, want none sent", n, sum)
		}
		// The refused recipients are deferred, not failed: the relay, not
		// the address, was the problem, so a rerun must try them.
		j := e.journal()
		for _, en := range j {
			if en.Status != journal.Deferred {
				t.Errorf("journal <%s>: got %q, want deferred", en.Email, en.Status)
			}
		}
		// The run stops: at most the message in flight and the one
		// handed to the worker are tried (concurrency 1).
		if len(j) == 0 || len(j) > 2 {
			t.Errorf("got %d recipients attempted, want 1 or 2 of %d: the run must stop", len(j), len(addrs))
		}
		if !strings.Contains(out, "deferred") {
			t.Errorf("got notices %q, want the deferred recipient", out)
		}
	})
	t.Run("abort_after", func(t *testing.T) {
		e := newRunEnv(t, "newsletter", smtptest.Options{}, "  concurrency: 1\n  abort_after: 3\n")
		addrs := e.generatedAddrs(20)
		for _, a := range addrs {
			e.srv.RejectRcpt(a, 550, "5.1.1", "no such user")
		}
		sum, _, err := e.run(context.Background(), SendOptions{})
		var ae *AbortError
		if !errors.As(err, &ae) || !strings.Contains(err.Error(), "abort_after") {
			t.Fatalf("got %v, want an *AbortError naming send.abort_after", err)
		}
		if sum.Failed < 3 || sum.Failed > 4 {
			t.Errorf("got %d failed, want 3 (plus at most the one handed to the worker)", sum.Failed)
		}
		if n := len(e.journal()); n != sum.Failed {
			t.Errorf("got %d recipients in the journal, want %d", n, sum.Failed)
		}
	})
	t.Run("a success resets abort_after", func(t *testing.T) {
		e := newRunEnv(t, "newsletter", smtptest.Options{}, "  concurrency: 1\n  abort_after: 3\n")
		addrs := e.generatedAddrs(12)
		// Two failures, one success, in turn: never three in a row.
		for i, a := range addrs {
			if i%3 != 2 {
				e.srv.RejectRcpt(a, 550, "5.1.1", "no such user")
			}
		}
		sum, _, err := e.run(context.Background(), SendOptions{})
		if err != nil || sum.Failed != 8 || sum.Sent != 4 {
			t.Errorf("got %+v, %v, want 8 failed, 4 sent and no abort", sum, err)
		}
	})
}

func TestRunGroup(t *testing.T) {
	team := []string{"dana@acme.example", "eli@acme.example", "farah@acme.example", "gus@acme.example"}
	t.Run("one rejected", func(t *testing.T) {
		e := newRunEnv(t, "group", smtptest.Options{}, "")
		e.srv.RejectRcpt("eli@acme.example", 550, "5.1.1", "no such user")
		sum, _, err := e.run(context.Background(), SendOptions{})
		if err != nil || sum.Sent != 3 || sum.Failed != 1 {
			t.Fatalf("got %+v, %v, want 3 sent and 1 failed", sum, err)
		}
		msgs := e.srv.Messages()
		if len(msgs) != 1 {
			t.Fatalf("got %d messages, want one for the group", len(msgs))
		}
		if want := []string{"dana@acme.example", "farah@acme.example", "gus@acme.example"}; !slices.Equal(msgs[0].To, want) {
			t.Errorf("got envelope %v, want %v", msgs[0].To, want)
		}
		want := allOf(team, journal.Sent)
		want["eli@acme.example"] = journal.Failed
		e.wantStatus(want)
		j := e.journal()
		if j["dana@acme.example"].MessageID == "" || j["dana@acme.example"].MessageID != j["gus@acme.example"].MessageID {
			t.Errorf("got Message-IDs %q and %q, want the group's one for all", j["dana@acme.example"].MessageID, j["gus@acme.example"].MessageID)
		}
		if sum = e.mustRun(SendOptions{}); sum.Sent != 0 || sum.Previously != 4 {
			t.Errorf("rerun: got %+v, want nothing sent and 4 done before", sum)
		}
		if n := len(e.srv.Messages()); n != 1 {
			t.Errorf("rerun: got %d messages in all, want still 1", n)
		}
	})
	t.Run("max_rcpt", func(t *testing.T) {
		e := newRunEnv(t, "group", smtptest.Options{}, "  max_rcpt: 3\n")
		sum := e.mustRun(SendOptions{})
		if sum.Sent != 4 {
			t.Errorf("got %+v, want 4 sent", sum)
		}
		msgs := e.srv.Messages()
		if len(msgs) != 2 || len(msgs[0].To) != 3 || len(msgs[1].To) != 1 {
			t.Fatalf("got %d transactions %v, want 2 of 3 and 1 recipients", len(msgs), msgs)
		}
		if !bytes.Equal(msgs[0].Data, msgs[1].Data) {
			t.Error("got different messages in the two transactions, want the same group message")
		}
		e.wantDeliveries(allOf(team, 1))
		e.wantStatus(allOf(team, journal.Sent))
	})
	t.Run("server limit 452", func(t *testing.T) {
		// The server takes 2 recipients per transaction and answers 452
		// to the third: the rest go in a new transaction, none is failed.
		e := newRunEnv(t, "group", smtptest.Options{MaxRecipients: 2}, "  backoff: 1ms\n")
		sum := e.mustRun(SendOptions{})
		if sum.Sent != 4 || sum.Deferred+sum.Failed != 0 {
			t.Errorf("got %+v, want 4 sent", sum)
		}
		if n := len(e.srv.Messages()); n != 2 {
			t.Errorf("got %d transactions, want 2", n)
		}
		e.wantDeliveries(allOf(team, 1))
	})
}

func TestRunSuppressed(t *testing.T) {
	e := newRunEnv(t, "newsletter", smtptest.Options{}, "")
	runAppend(t, filepath.Join(e.dir, "campaign.yaml"), "suppress: [stop.txt]\n")
	if err := os.WriteFile(filepath.Join(e.dir, "stop.txt"), []byte("renee@EXAMPLE.fr\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := e.mustRun(SendOptions{})
	if sum.Sent != 4 || sum.Skipped != 1 {
		t.Errorf("got %+v, want 4 sent and 1 skipped", sum)
	}
	want := allOf(newsletterAddrs, 1)
	want["renee@example.fr"] = 0
	e.wantDeliveries(want)
	if en := e.journal()["renee@example.fr"]; en.Status != journal.Skipped || en.Reason != "suppressed" {
		t.Errorf("journal: got %+v, want skipped as suppressed", en)
	}
}

func TestRunInvalidRowSkipped(t *testing.T) {
	e := newRunEnv(t, "newsletter", smtptest.Options{}, "")
	runAppend(t, filepath.Join(e.dir, "recipients.csv"), "zoe@example.org,Zoë,Again,x1,pro\nnot-an-address,N,A,x2,free\n")
	sum, out, err := e.run(context.Background(), SendOptions{})
	if err != nil || sum.Sent != 5 {
		t.Fatalf("got %+v, %v, want 5 sent", sum, err)
	}
	if !strings.Contains(out, "recipients.csv:8: email: invalid address") || !strings.Contains(out, "recipients.csv:7: email: warning: duplicate of row 2") {
		t.Errorf("got notices %q, want the invalid and the duplicate row", out)
	}
	e.wantDeliveries(allOf(newsletterAddrs, 1))
}

func TestRunDuplicateRowNotResent(t *testing.T) {
	e := newRunEnv(t, "newsletter", smtptest.Options{}, "  concurrency: 2\n")
	runAppend(t, filepath.Join(e.dir, "recipients.csv"), "ZOE@example.org,Zoë,Again,x1,pro\n")
	// The journal keys recipients by address, so a duplicate row must not
	// become the last status of the address, in the first run or a rerun:
	// a skipped recipient is tried again by the next run.
	for run := 1; run <= 3; run++ {
		sum := e.mustRun(SendOptions{})
		if want := map[bool]int{true: 5, false: 0}[run == 1]; sum.Sent != want || sum.Skipped != 1 {
			t.Errorf("run %d: got %+v, want %d sent and the duplicate skipped", run, sum, want)
		}
		if en := e.journal()["zoe@example.org"]; en.Status != journal.Sent || en.Row != 2 {
			t.Errorf("run %d: journal: got %+v, want row 2 sent", run, en)
		}
	}
	e.wantDeliveries(allOf(newsletterAddrs, 1))
}

func TestRunChanged(t *testing.T) {
	e := newRunEnv(t, "newsletter", smtptest.Options{}, "")
	e.mustRun(SendOptions{})
	runAppend(t, filepath.Join(e.dir, "body.md"), "\nP.S. one more thing.\n")
	sum, _, err := e.run(context.Background(), SendOptions{})
	if !errors.Is(err, ErrChanged) {
		t.Fatalf("got %v, want ErrChanged", err)
	}
	var ce *ChangedError
	if !errors.As(err, &ce) || !slices.Equal(ce.Files, []string{"body.md"}) || !strings.HasSuffix(err.Error(), ": body.md") {
		t.Errorf("got %v, want the changed file named: body.md", err)
	}
	if sum.Sent+sum.Previously != 0 || len(e.srv.Messages()) != 5 {
		t.Errorf("got %+v and %d messages, want nothing more sent", sum, len(e.srv.Messages()))
	}
	sum, out, err := e.run(context.Background(), SendOptions{Force: true})
	if err != nil || sum.Sent != 0 || sum.Previously != 5 {
		t.Errorf("forced rerun: got %+v, %v, want nothing sent and 5 done before", sum, err)
	}
	if !strings.Contains(out, "warning:") || !strings.Contains(out, "going on, as forced") {
		t.Errorf("forced rerun: got notices %q, want a warning that the run was forced", out)
	}
}

func TestRunLocked(t *testing.T) {
	e := newRunEnv(t, "newsletter", smtptest.Options{}, "")
	c := e.campaign()
	j, err := journal.Open(JournalPath(c), journal.Header{Campaign: c.Name, Command: "send"}, campaign.AddrKey)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	_, _, err = e.run(context.Background(), SendOptions{})
	if !errors.Is(err, journal.ErrLocked) {
		t.Fatalf("got %v, want journal.ErrLocked", err)
	}
	if n := len(e.srv.Messages()); n != 0 {
		t.Errorf("got %d messages, want none while the journal is held", n)
	}
}

func TestRunCancelled(t *testing.T) {
	e := newRunEnv(t, "newsletter", smtptest.Options{}, "  concurrency: 3\n")
	addrs := e.generatedAddrs(60)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var settled atomic.Int64
	sum, _, err := e.run(ctx, SendOptions{Progress: func(journal.Entry) {
		if settled.Add(1) == 10 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if sum.Sent < 10 || sum.Sent >= len(addrs) {
		t.Errorf("got %d sent, want at least 10 and fewer than %d: the run must stop", sum.Sent, len(addrs))
	}
	// The messages in flight finished: every attempted recipient has an
	// outcome, none is left unknown.
	j := e.journal()
	for _, en := range j {
		if en.Status != journal.Sent {
			t.Errorf("journal <%s>: got %q, want sent", en.Email, en.Status)
		}
	}
	if len(j) != sum.Sent || len(e.srv.Messages()) != sum.Sent {
		t.Errorf("got %d in the journal and %d on the server, want %d as counted", len(j), len(e.srv.Messages()), sum.Sent)
	}

	first := sum.Sent
	sum = e.mustRun(SendOptions{})
	if sum.Previously != first || sum.Sent != len(addrs)-first {
		t.Errorf("rerun: got %+v, want %d sent and %d done before", sum, len(addrs)-first, first)
	}
	e.wantDeliveries(allOf(addrs, 1))
	e.wantStatus(allOf(addrs, journal.Sent))
}

func TestRunStopsTakingRecipients(t *testing.T) {
	t.Run("abort", func(t *testing.T) {
		e := newRunEnv(t, "newsletter", smtptest.Options{}, "  concurrency: 1\n")
		e.generatedAddrs(10)
		e.srv.FailCommand("MAIL", -1, 550, "5.7.1", "sender not allowed")
		if _, _, err := e.run(context.Background(), SendOptions{}); err == nil {
			t.Fatal("got no error, want an *AbortError")
		}
		// One connection: the refused transaction is the only one.
		if n := len(e.journal()); n != 1 {
			t.Errorf("got %d recipients attempted, want 1: the relay refused the sender", n)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		const concurrency = 3
		e := newRunEnv(t, "newsletter", smtptest.Options{}, fmt.Sprintf("  concurrency: %d\n", concurrency))
		e.generatedAddrs(60)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var settled atomic.Int64
		sum, _, _ := e.run(ctx, SendOptions{Progress: func(journal.Entry) {
			if settled.Add(1) == 10 {
				cancel()
			}
		}})
		// The tenth outcome cancels; only the other connections' messages
		// in flight may still finish.
		if limit := 10 + concurrency - 1; sum.Sent > limit {
			t.Errorf("got %d sent, want at most %d", sum.Sent, limit)
		}
	})
}

func subjectOf(t *testing.T, data []byte) string {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse message: %v", err)
	}
	s, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("decode subject: %v", err)
	}
	return s
}

// The first Ctrl-C stops recipients that only wait for the rate limiter:
// they are not in flight, get no journal entry, and the next run sends
// them. With 1/m, a message still waiting would otherwise go a minute
// after the interrupt.
func TestRunStopWhileRateLimited(t *testing.T) {
	e := newRunEnv(t, "newsletter", smtptest.Options{}, "  rate: 1/m\n  burst: 1\n  concurrency: 2\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sent atomic.Int64
	sum, _, err := e.run(ctx, SendOptions{Progress: func(en journal.Entry) {
		if en.Status == journal.Sent && sent.Add(1) == 1 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want the interrupt", err)
	}
	if sum.Sent != 1 || sum.Deferred != 0 || sum.Unknown != 0 {
		t.Errorf("got %s, want 1 sent and nothing else settled", sum)
	}
	if got := len(e.journal()); got != 1 {
		t.Errorf("journal holds %d recipients, want only the one sent", got)
	}
	// The rerun, unlimited, sends the others exactly once.
	e2 := e.campaign()
	e2.Send.Rate = ""
	p := e.pool(e2)
	var out bytes.Buffer
	if _, err := Send(context.Background(), e2, p, SendOptions{Out: &out}); err != nil {
		t.Fatalf("rerun: %v\n%s", err, out.String())
	}
	e.wantDeliveries(allOf(newsletterAddrs, 1))
}

// A run that cannot start is a setup problem, not a delivery failure.
func TestRunSetupError(t *testing.T) {
	e := newRunEnv(t, "newsletter", smtptest.Options{}, "")
	if err := os.WriteFile(JournalPath(e.campaign()), []byte("this is not a journal line\n{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := e.run(context.Background(), SendOptions{})
	var se *SetupError
	if !errors.As(err, &se) {
		t.Fatalf("got %v (%T), want a *SetupError", err, err)
	}
}
