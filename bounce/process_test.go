package bounce

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mailrun/mailrun/internal/dovecottest"
	"github.com/mailrun/mailrun/mailbox"
)

var update = flag.Bool("update", false, "rewrite golden files")

// The mailbox clients satisfy the consumer's interface.
var (
	_ Mailbox = (*mailbox.IMAP)(nil)
	_ Mailbox = (*mailbox.POP3)(nil)
)

var samples = []string{"postfix.eml", "exim.eml", "gmail.eml", "microsoft365.eml", "qmail.eml", "autoreply.eml", "delayed.eml", "malformed.eml"}

func readSample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "bounces", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func deliverAll(t *testing.T, srv *dovecottest.Server) {
	t.Helper()
	for _, name := range samples {
		srv.Deliver(t, readSample(t, name))
	}
}

// marks records what Mark is given; it fails a batch holding fail.
type marks struct {
	mu      sync.Mutex
	calls   []string
	batches int
	fail    string
}

func (m *marks) mark(found []Found) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.batches++
	var err error
	for _, f := range found {
		m.calls = append(m.calls, f.MessageID+" "+f.Addr)
		if f.Addr == m.fail {
			err = errors.New("journal is in use by another run")
		}
	}
	return err
}

func (m *marks) sorted() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(slices.Values(m.calls))
}

var wantMarks = []string{
	"<00003.20261124110245.9be0@acme.example> olduser@example.org",
	"<00005.20261124124009.51aa@acme.example> nosuch@example.com",
	"<00007.20261124130510.77ab@acme.example> no-such-user@gmail.com",
	"<00009.20261124143105.0c3e@acme.example> blocked@contoso.com",
	"<00009.20261124143105.0c3e@acme.example> nobody@contoso.com",
	"<group.20261124101521.7f3a@acme.example> Gone.User@Example.NET",
	"<group.20261124101521.7f3a@acme.example> nobody@example.net",
}

// subjects returns the Subject lines of raw messages, sorted.
func subjects(msgs [][]byte) []string {
	var out []string
	for _, m := range msgs {
		for _, line := range strings.Split(string(m), "\n") {
			if s, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "Subject: "); ok {
				out = append(out, s)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

func subjectsOf(t *testing.T, names ...string) []string {
	t.Helper()
	var raws [][]byte
	for _, n := range names {
		raws = append(raws, readSample(t, n))
	}
	return subjects(raws)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func openBox(t *testing.T, srv *dovecottest.Server, proto string) mailbox.Mailbox {
	t.Helper()
	mb, err := mailbox.Open(context.Background(), srv.Config(proto, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	return mb
}

func TestProcessIMAPMove(t *testing.T) {
	srv := dovecottest.Start(t)
	deliverAll(t, srv)
	ctx := context.Background()
	suppress := filepath.Join(t.TempDir(), "bounced.txt")
	const before = "# hard bounces\nzed@example.org\nGone.User@example.net\n"
	if err := os.WriteFile(suppress, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	var mk marks
	opts := Options{After: AfterMove, WriteTo: suppress, Mark: mk.mark}

	// A dry run reads everything and changes nothing.
	dry := opts
	dry.DryRun = true
	mb := openBox(t, srv, "imap")
	sum, err := Process(ctx, mb, dry)
	if err != nil {
		t.Fatal(err)
	}
	if err := mb.Close(); err != nil {
		t.Fatal(err)
	}
	checkFindings(t, sum)
	for _, m := range sum.Messages {
		want := "would move"
		if m.Err != nil || m.Report.Kind == NotBounce {
			want = "kept" // only recognised bounces are moved
		}
		if m.Done != want {
			t.Errorf("dry run: message %s: got %q, want %q", m.ID, m.Done, want)
		}
	}
	if got := readFile(t, suppress); got != before {
		t.Errorf("dry run changed the suppression file:\n%s", got)
	}
	if len(mk.sorted()) != 0 {
		t.Errorf("dry run called Mark: %v", mk.sorted())
	}
	if got := len(srv.Messages(t, "")); got != len(samples) {
		t.Errorf("dry run: inbox holds %d messages, want %d", got, len(samples))
	}
	if got := len(srv.Messages(t, "Processed")); got != 0 {
		t.Errorf("dry run: Processed holds %d messages, want 0", got)
	}

	// The real run.
	mb = openBox(t, srv, "imap")
	sum, err = Process(ctx, mb, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := mb.Close(); err != nil {
		t.Fatal(err)
	}
	checkFindings(t, sum)
	want := before + "blocked@contoso.com\nno-such-user@gmail.com\nnobody@contoso.com\nnobody@example.net\nnosuch@example.com\nolduser@example.org\n"
	if got := readFile(t, suppress); got != want {
		t.Errorf("suppression file:\ngot\n%s\nwant\n%s", got, want)
	}
	if got := mk.sorted(); !slices.Equal(got, wantMarks) {
		t.Errorf("Mark calls:\ngot  %q\nwant %q", got, wantMarks)
	}
	if mk.batches != 1 {
		t.Errorf("Mark called %d times, want once for all bounces", mk.batches)
	}
	// The auto-reply, which is no bounce, and the malformed message stay;
	// the bounces are moved.
	if got, want := subjects(srv.Messages(t, "")), subjectsOf(t, "autoreply.eml", "malformed.eml"); !slices.Equal(got, want) {
		t.Errorf("inbox: got %q, want %q", got, want)
	}
	bounces := slices.DeleteFunc(slices.Clone(samples[:7]), func(n string) bool { return n == "autoreply.eml" })
	if got, want := subjects(srv.Messages(t, "Processed")), subjectsOf(t, bounces...); !slices.Equal(got, want) {
		t.Errorf("Processed: got %q, want %q", got, want)
	}

	// A second run finds the auto-reply and the malformed message and adds
	// nothing.
	mb = openBox(t, srv, "imap")
	sum, err = Process(ctx, mb, opts)
	if err != nil {
		t.Fatal(err)
	}
	_ = mb.Close()
	if len(sum.Messages) != 2 || len(sum.Errors()) != 1 || len(sum.NotBounces()) != 1 {
		t.Errorf("second run: got %d messages, %d errors, %d not bounces; want 2, 1, 1", len(sum.Messages), len(sum.Errors()), len(sum.NotBounces()))
	}
	if got := readFile(t, suppress); got != want {
		t.Errorf("second run changed the suppression file:\n%s", got)
	}
}

func TestProcessPOP3Delete(t *testing.T) {
	srv := dovecottest.Start(t)
	deliverAll(t, srv)
	ctx := context.Background()
	suppress := filepath.Join(t.TempDir(), "bounced.txt") // does not exist yet

	mb := openBox(t, srv, "pop3")
	sum, err := Process(ctx, mb, Options{After: AfterDelete, WriteTo: suppress, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := mb.Close(); err != nil {
		t.Fatal(err)
	}
	checkFindings(t, sum)
	if _, err := os.Stat(suppress); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dry run created the suppression file: %v", err)
	}
	if got := len(srv.Messages(t, "")); got != len(samples) {
		t.Errorf("dry run: %d messages left, want %d", got, len(samples))
	}

	mb = openBox(t, srv, "pop3")
	sum, err = Process(ctx, mb, Options{After: AfterDelete, WriteTo: suppress})
	if err != nil {
		t.Fatal(err)
	}
	// QUIT commits the deletions.
	if err := mb.Close(); err != nil {
		t.Fatal(err)
	}
	checkFindings(t, sum)
	want := "blocked@contoso.com\nGone.User@Example.NET\nno-such-user@gmail.com\nnobody@contoso.com\nnobody@example.net\nnosuch@example.com\nolduser@example.org\n"
	if got := readFile(t, suppress); got != want {
		t.Errorf("suppression file:\ngot\n%s\nwant\n%s", got, want)
	}
	// Not a bounce is never deleted; the malformed message is kept.
	if got, want := subjects(srv.Messages(t, "")), subjectsOf(t, "autoreply.eml", "malformed.eml"); !slices.Equal(got, want) {
		t.Errorf("left in the mailbox: got %q, want %q", got, want)
	}
}

// A failing Mark keeps its message so a later run can mark it; a suppression
// file that cannot be written stops the run before the mailbox changes.
func TestProcessFailuresKeepMessages(t *testing.T) {
	srv := dovecottest.Start(t)
	deliverAll(t, srv)
	ctx := context.Background()

	mb := openBox(t, srv, "imap")
	_, err := Process(ctx, mb, Options{After: AfterDelete, WriteTo: filepath.Join(t.TempDir(), "missing", "bounced.txt")})
	_ = mb.Close()
	if err == nil {
		t.Fatal("unwritable suppression file: got nil error")
	}
	if got := len(srv.Messages(t, "")); got != len(samples) {
		t.Fatalf("after a failed write %d messages are left, want %d", got, len(samples))
	}

	mk := marks{fail: "olduser@example.org"}
	mb = openBox(t, srv, "imap")
	sum, err := Process(ctx, mb, Options{After: AfterDelete, WriteTo: filepath.Join(t.TempDir(), "b.txt"), Mark: mk.mark})
	_ = mb.Close()
	if err != nil {
		t.Fatal(err)
	}
	hardMsgs := map[string]bool{}
	for _, f := range sum.Hard() {
		hardMsgs[f.ID] = true
	}
	if got, want := len(sum.Errors()), 1+len(hardMsgs); got != want {
		t.Errorf("got %d errors, want %d (malformed, and every hard bounce kept for the failed mark)", got, want)
	}
	// The soft bounce is deleted; every hard bounce waits for a later mark.
	if got, want := subjects(srv.Messages(t, "")), subjectsOf(t, "autoreply.eml", "exim.eml", "gmail.eml", "malformed.eml", "microsoft365.eml", "postfix.eml", "qmail.eml"); !slices.Equal(got, want) {
		t.Errorf("left in the mailbox: got %q, want %q", got, want)
	}
}

// checkFindings asserts what every run over the samples must find.
func checkFindings(t *testing.T, sum *Summary) {
	t.Helper()
	var hard, soft []string
	for _, f := range sum.Hard() {
		hard = append(hard, f.Addr+" "+f.Status)
	}
	for _, f := range sum.Soft() {
		soft = append(soft, f.Addr+" "+f.Status)
	}
	wantHard := []string{"blocked@contoso.com 5.4.1", "Gone.User@Example.NET 5.1.1", "no-such-user@gmail.com 5.1.1", "nobody@contoso.com 5.1.10", "nobody@example.net 5.1.1", "nosuch@example.com 5.1.1", "olduser@example.org 5.1.1"}
	if !slices.Equal(hard, wantHard) {
		t.Errorf("hard:\ngot  %q\nwant %q", hard, wantHard)
	}
	if want := []string{"slow@example.com 4.4.1"}; !slices.Equal(soft, want) {
		t.Errorf("soft: got %q, want %q", soft, want)
	}
	if n := len(sum.NotBounces()); n != 1 {
		t.Errorf("got %d not-bounces, want 1", n)
	}
	errs := sum.Errors()
	if len(errs) < 1 || !errors.Is(errs[0].Err, ErrMalformed) || errs[0].Done != "kept" {
		t.Errorf("errors: got %+v, want the malformed message, kept", errs)
	}
}

// summaryOfSamples builds a Summary from the samples with their file names
// as IDs, as Process would.
func summaryOfSamples(t *testing.T) *Summary {
	sum := &Summary{WriteTo: "bounced.txt"}
	for _, name := range samples {
		m := Message{ID: name, Done: "moved"}
		rep, err := Parse(readSample(t, name))
		if err != nil {
			m.Err, m.Done = err, "kept"
		}
		m.Report = rep
		sum.Messages = append(sum.Messages, m)
	}
	sum.collect()
	return sum
}

func TestSummaryPrintGolden(t *testing.T) {
	sum := summaryOfSamples(t)
	var got bytes.Buffer
	if err := sum.Print(&got); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "summary.golden")
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		t.Errorf("summary:\ngot\n%s\nwant\n%s", got.String(), want)
	}
	// Hard and soft lines do not depend on the mailbox order.
	shuffled := summaryOfSamples(t)
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(shuffled.Messages), func(i, j int) {
		shuffled.Messages[i], shuffled.Messages[j] = shuffled.Messages[j], shuffled.Messages[i]
	})
	var again bytes.Buffer
	if err := shuffled.Print(&again); err != nil {
		t.Fatal(err)
	}
	if again.String() != got.String() {
		t.Errorf("print depends on message order:\n%s\nvs\n%s", again.String(), got.String())
	}
}

func TestProcessBadOptions(t *testing.T) {
	if _, err := Process(context.Background(), nil, Options{After: "archive"}); err == nil || !strings.Contains(err.Error(), "archive") {
		t.Errorf("got %v, want an error naming the bad value", err)
	}
}
