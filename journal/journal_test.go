package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// openT opens a journal that is closed when the test ends.
func openT(t *testing.T, path string, h Header) *Journal {
	t.Helper()
	j, err := Open(path, h, lower)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func readAll(t *testing.T, path string) []Entry {
	t.Helper()
	var out []Entry
	if err := Read(path, func(e Entry) error { out = append(out, e); return nil }); err != nil {
		t.Fatalf("Read: %v", err)
	}
	return out
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func mustRecord(t *testing.T, j *Journal, es ...Entry) {
	t.Helper()
	for _, e := range es {
		if err := j.Record(e); err != nil {
			t.Fatalf("Record(%s %s): %v", e.Email, e.Status, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "news.journal")
	h1 := Header{Time: t0, Campaign: "news", Fingerprint: "aaaa", Files: map[string]string{"body.md": "12ab"}, Command: "send"}
	want := []Entry{
		{Time: t0, Row: 2, Email: "Ann@Example.org", Status: Sending, MessageID: "<1@acme.example>"},
		{Time: t0, Row: 2, Email: "Ann@Example.org", Status: Sent, MessageID: "<1@acme.example>",
			Reply: &Reply{Code: 250, Enhanced: "2.0.0", Text: "ok"}, Attempts: 1},
		{Time: t0, Row: 3, Email: "bob@example.org", Status: Failed, Attempts: 1,
			Reply: &Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"},
			Error: "RCPT TO: 550\r\nX-Injected: yes"},
		{Time: t0, Row: 4, Email: "cy@example.org", Status: Skipped, Reason: "suppressed"},
		{Time: t0, Row: 5, Email: "di@example.org", Status: Sending},
	}
	j := openT(t, path, h1)
	mustRecord(t, j, want...)
	if err := j.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	ls := lines(t, path)
	if len(ls) != 1+len(want) {
		t.Fatalf("got %d lines, want %d (CR/LF in a value must not split a line):\n%s", len(ls), 1+len(want), strings.Join(ls, "\n"))
	}
	var head map[string]any
	if err := json.Unmarshal([]byte(ls[0]), &head); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"type": "begin", "campaign": "news", "fingerprint": "aaaa", "version": 1.0, "time": "2026-11-25T10:00:00Z"} {
		if head[k] != v {
			t.Errorf("begin record %s: got %v, want %v", k, head[k], v)
		}
	}
	if got := readAll(t, path); !reflect.DeepEqual(got, want) {
		t.Errorf("Read:\ngot  %+v\nwant %+v", got, want)
	}

	// The second run sees the first run's fingerprint and statuses.
	h2 := Header{Time: t0.Add(time.Hour), Campaign: "news", Fingerprint: "bbbb", Command: "send"}
	j2 := openT(t, path, h2)
	if got := j2.Began(); !reflect.DeepEqual(got, h1) {
		t.Errorf("Began: got %+v, want %+v", got, h1)
	}
	for addr, want := range map[string]Status{
		"ann@example.org": Sent, " ANN@example.ORG ": Sent, "bob@example.org": Failed,
		"cy@example.org": Skipped, "di@example.org": Unknown,
	} {
		if got, ok := j2.Status(addr); !ok || got != want {
			t.Errorf("Status(%q): got %q %v, want %q", addr, got, ok, want)
		}
	}
	if _, ok := j2.Status("nobody@example.org"); ok {
		t.Error("Status(nobody): got true, want false")
	}
	if got, want := j2.Counts(), (Summary{Sent: 1, Failed: 1, Skipped: 1, Unknown: 1}); got != want {
		t.Errorf("Counts: got %+v, want %+v", got, want)
	}
	mustRecord(t, j2, Entry{Time: t0, Row: 5, Email: "di@example.org", Status: Sent})
	if err := j2.Close(); err != nil {
		t.Fatal(err)
	}

	rep, err := Latest(path, lower)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep.Began, h1) || len(rep.Runs) != 1 || !reflect.DeepEqual(rep.Runs[0], h2) {
		t.Errorf("Latest headers: got %+v %+v, want %+v [%+v]", rep.Began, rep.Runs, h1, h2)
	}
	var got []string
	for _, e := range rep.Recipients {
		got = append(got, fmt.Sprintf("%d %s %s", e.Row, e.Email, e.Status))
	}
	wantR := []string{"2 Ann@Example.org sent", "3 bob@example.org failed", "4 cy@example.org skipped", "5 di@example.org sent"}
	if !reflect.DeepEqual(got, wantR) {
		t.Errorf("Latest recipients: got %q, want %q", got, wantR)
	}
	if want := (Summary{Sent: 2, Failed: 1, Skipped: 1}); rep.Summary != want {
		t.Errorf("Latest summary: got %+v, want %+v", rep.Summary, want)
	}
}

// TestLastRecordWins replays status sequences and reopens: the last record
// decides, and an intent without outcome reads as unknown.
func TestLastRecordWins(t *testing.T) {
	tests := []struct {
		name string
		seq  []Status
		want Status
	}{
		{"intent only", []Status{Sending}, Unknown},
		{"intent then sent", []Status{Sending, Sent}, Sent},
		{"deferred then retried and crashed", []Status{Sending, Deferred, Sending}, Unknown},
		{"sent then bounced", []Status{Sending, Sent, Bounced}, Bounced},
		{"unknown then resent", []Status{Sending, Unknown, Sending, Sent}, Sent},
		{"skipped", []Status{Skipped}, Skipped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j")
			j := openT(t, path, Header{})
			for _, s := range tt.seq {
				mustRecord(t, j, Entry{Row: 1, Email: "a@example.org", Status: s})
			}
			if got, _ := j.Status("a@example.org"); got != tt.seq[len(tt.seq)-1] {
				t.Errorf("live Status: got %q, want %q", got, tt.seq[len(tt.seq)-1])
			}
			j.Close()
			j2 := openT(t, path, Header{})
			if got, _ := j2.Status("a@example.org"); got != tt.want {
				t.Errorf("Status after reopen: got %q, want %q", got, tt.want)
			}
			if got := j2.Counts().Total(); got != 1 {
				t.Errorf("Counts total: got %d, want 1", got)
			}
			rep, err := Latest(path, lower)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Recipients) != 1 || rep.Recipients[0].Status != tt.want {
				t.Errorf("Latest: got %+v, want one %q", rep.Recipients, tt.want)
			}
		})
	}
}

// lower is the Key of these tests: the rule campaign.AddrKey gives a real
// run (trimmed, lower-cased).
func lower(addr string) string { return strings.ToLower(strings.TrimSpace(addr)) }

// The journal knows recipients by the Key it is given, and only by it.
func TestKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.journal")
	j := openT(t, path, Header{Campaign: "c"})
	mustRecord(t, j, Entry{Email: "Ann@Example.org", Status: Sent})
	if st, ok := j.Status(" ann@EXAMPLE.org "); !ok || st != Sent {
		t.Errorf("got %q, %v for another spelling, want sent under the key", st, ok)
	}
	j.Close()
	exact, err := Open(path, Header{Campaign: "c"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer exact.Close()
	if _, ok := exact.Status("ann@example.org"); ok {
		t.Error("a nil Key found ann@ for Ann@, want addresses compared as written")
	}
	if st, ok := exact.Status("Ann@Example.org"); !ok || st != Sent {
		t.Errorf("got %q, %v for the address as written, want sent", st, ok)
	}
}

func TestRecordRejects(t *testing.T) {
	j := openT(t, filepath.Join(t.TempDir(), "j"), Header{})
	for _, e := range []Entry{
		{Email: "", Status: Sent},
		{Email: "  ", Status: Sent},
		{Email: "a@example.org", Status: "delivered"},
		{Email: "a@example.org"},
	} {
		if err := j.Record(e); err == nil {
			t.Errorf("Record(%+v): got nil error, want one", e)
		}
	}
	if err := j.Record(Entry{Email: "a@example.org", Status: Sent}); err != nil {
		t.Errorf("a rejected entry must not poison the journal: %v", err)
	}
}

func TestConcurrentRecord(t *testing.T) {
	const workers, per = 8, 250
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Header{Campaign: "c"})
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				row := w*per + i
				addr := fmt.Sprintf("r%d@example.org", row)
				if err := j.Record(Entry{Row: row, Email: addr, Status: Sending}); err != nil {
					errs <- err
					return
				}
				if err := j.Queue(Entry{Row: row, Email: addr, Status: Sent}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := j.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := j.Counts(); got != (Summary{Sent: workers * per}) {
		t.Errorf("Counts: got %+v, want %d sent", got, workers*per)
	}
	j.mu.Lock()
	batches := j.batches
	j.mu.Unlock()
	t.Logf("%d records in %d writes", 2*workers*per, batches)
	if batches >= 2*workers*per {
		t.Errorf("got %d writes for %d records, want fewer (group commit)", batches, 2*workers*per)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	seen := make(map[int]Status)
	for _, e := range readAll(t, path) {
		prev := seen[e.Row]
		if (e.Status == Sending && prev != "") || (e.Status == Sent && prev != Sending) {
			t.Fatalf("row %d: %q after %q", e.Row, e.Status, prev)
		}
		seen[e.Row] = e.Status
	}
	if len(seen) != workers*per {
		t.Errorf("got %d recipients, want %d", len(seen), workers*per)
	}
}

// TestTornLastLine cuts the journal inside or at the end of its last line,
// as kill -9 or a power cut may, then reopens and appends.
func TestTornLastLine(t *testing.T) {
	lastLine := func(b []byte) int { return bytes.LastIndexByte(b[:len(b)-1], '\n') + 1 }
	tests := []struct {
		name     string
		keep     func(b []byte) int // length of the file left by the crash
		wantLast Status
		wantN    int // entries read back after the append
	}{
		// The torn "sent" is dropped: c stays an intent.
		{"mid-line", func(b []byte) int { return len(b) - 10 }, Unknown, 3},
		{"one byte of the line", func(b []byte) int { return lastLine(b) + 1 }, Unknown, 3},
		// A complete record that only lacks its newline is kept.
		{"newline missing", func(b []byte) int { return len(b) - 1 }, Sent, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j")
			j := openT(t, path, Header{Fingerprint: "f"})
			mustRecord(t, j,
				Entry{Row: 1, Email: "a@example.org", Status: Sent},
				Entry{Row: 2, Email: "c@example.org", Status: Sending},
				Entry{Row: 2, Email: "c@example.org", Status: Sent},
			)
			j.Close()
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, int64(tt.keep(b))); err != nil {
				t.Fatal(err)
			}
			// Readers tolerate the torn line without repairing it.
			if n := len(readAll(t, path)); n != tt.wantN-1 {
				t.Errorf("Read before repair: got %d entries, want %d", n, tt.wantN-1)
			}

			j2 := openT(t, path, Header{Fingerprint: "g"})
			if got, _ := j2.Status("c@example.org"); got != tt.wantLast {
				t.Errorf("Status(c): got %q, want %q", got, tt.wantLast)
			}
			if got := j2.Began().Fingerprint; got != "f" {
				t.Errorf("Began fingerprint: got %q, want f", got)
			}
			mustRecord(t, j2, Entry{Row: 3, Email: "d@example.org", Status: Sent})
			if err := j2.Close(); err != nil {
				t.Fatal(err)
			}
			got := readAll(t, path)
			if len(got) != tt.wantN || got[len(got)-1].Email != "d@example.org" {
				t.Errorf("after append: got %+v, want %d entries ending with d", got, tt.wantN)
			}
			if _, err := Latest(path, lower); err != nil {
				t.Errorf("Latest after repair: %v", err)
			}
		})
	}
}

func TestTornOnlyHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	if err := os.WriteFile(path, []byte(`{"type":"begin","fingerpr`), 0o644); err != nil {
		t.Fatal(err)
	}
	j := openT(t, path, Header{Fingerprint: "new"})
	if got := j.Began().Fingerprint; got != "new" {
		t.Errorf("Began: got %q, want new (a torn header starts the journal anew)", got)
	}
	mustRecord(t, j, Entry{Email: "a@example.org", Status: Sent})
	j.Close()
	if ls := lines(t, path); len(ls) != 2 || !strings.Contains(ls[0], `"type":"begin"`) {
		t.Errorf("got lines %q, want begin and one entry", ls)
	}
}

func TestCorruptLines(t *testing.T) {
	begin := `{"type":"begin","time":"2026-11-25T10:00:00Z","version":1}`
	ok := `{"time":"2026-11-25T10:00:00Z","email":"a@example.org","status":"sent"}`
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"garbage in the middle", begin + "\n" + ok + "\n{\"time\":\n" + ok + "\n", ":3: corrupt journal line"},
		{"unknown status", begin + "\n" + strings.Replace(ok, "sent", "delivered", 1) + "\n" + ok + "\n", ":2: corrupt journal line: unknown status"},
		{"no begin", ok + "\n" + ok + "\n", ":1: corrupt journal line: journal does not start"},
		{"second begin", begin + "\n" + begin + "\n" + ok + "\n", ":2: corrupt journal line: second begin"},
		{"unknown type", begin + "\n" + `{"type":"end"}` + "\n" + ok + "\n", ":2: corrupt journal line: unknown record type"},
		{"newer version", strings.Replace(begin, `"version":1`, `"version":2`, 1) + "\n" + ok + "\n", ":1: corrupt journal line: journal version 2"},
		{"entry without email", begin + "\n" + `{"status":"sent"}` + "\n" + ok + "\n", ":2: corrupt journal line: entry without an email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			check := func(what string, err error) {
				t.Helper()
				if err == nil || !strings.Contains(err.Error(), path+tt.want) {
					t.Errorf("%s: got %v, want an error containing %q", what, err, path+tt.want)
				}
			}
			j, err := Open(path, Header{}, lower)
			if err == nil {
				j.Close()
			}
			check("Open", err)
			check("Read", Read(path, func(Entry) error { return nil }))
			_, err = Latest(path, lower)
			check("Latest", err)
			// A failed Open must not keep the lock.
			j, err = Open(path, Header{}, lower)
			if errors.Is(err, ErrLocked) {
				t.Errorf("second Open after a failed one: %v", err)
			} else if err == nil {
				j.Close()
			}
		})
	}
}

func TestLongLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Header{})
	long := strings.Repeat("x", 200<<10) // longer than the reader's buffer
	mustRecord(t, j, Entry{Email: "a@example.org", Status: Failed, Error: long}, Entry{Email: "b@example.org", Status: Sent})
	j.Close()
	got := readAll(t, path)
	if len(got) != 2 || got[0].Error != long || got[1].Email != "b@example.org" {
		t.Errorf("got %d entries, want the long one intact and b", len(got))
	}
}

func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Header{})
	_, err := Open(path, Header{}, lower)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: got %v, want ErrLocked", err)
	}
	var le *LockedError
	if !errors.As(err, &le) || le.Path != path || !strings.Contains(err.Error(), path) {
		t.Errorf("got %#v, want a *LockedError naming %s", err, path)
	}
	if _, err := MarkBounced(path, Header{}, lower, nil); !errors.Is(err, ErrLocked) {
		t.Errorf("MarkBounced during a run: got %v, want ErrLocked", err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j2, err := Open(path, Header{}, lower)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	j2.Close()
}

func TestLazyHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Header{Fingerprint: "a"})
	if err := j.Flush(); err != nil {
		t.Fatal(err)
	}
	j.Close()
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Fatalf("a run that records nothing wrote %q", b)
	}
	j = openT(t, path, Header{Fingerprint: "b"})
	mustRecord(t, j, Entry{Email: "a@example.org", Status: Sent})
	j.Close()
	j = openT(t, path, Header{Fingerprint: "c"}) // records nothing: no run record
	j.Close()
	ls := lines(t, path)
	if len(ls) != 2 || !strings.Contains(ls[0], `"fingerprint":"b"`) {
		t.Errorf("got %q, want begin b and one entry", ls)
	}
}

func TestClose(t *testing.T) {
	j := openT(t, filepath.Join(t.TempDir(), "j"), Header{})
	if err := j.Queue(Entry{Email: "a@example.org", Status: Sent}); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := j.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: got %v, want ErrClosed", err)
	}
	if err := j.Record(Entry{Email: "b@example.org", Status: Sent}); !errors.Is(err, ErrClosed) {
		t.Errorf("Record after Close: got %v, want ErrClosed", err)
	}
	if err := j.Flush(); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close: got %v, want ErrClosed", err)
	}
	if got := readAll(t, j.Path()); len(got) != 1 {
		t.Errorf("a queued entry must be written by Close: got %d entries", len(got))
	}
}

var errInjected = errors.New("injected EIO")

// TestWriteErrorsAreSticky: after a failed write or fsync nobody may
// believe a record is durable, so every waiter of the batch and every
// later call gets the error.
func TestWriteErrorsAreSticky(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(j *Journal)
		want   error
		cut    bool // the file can still be cut back to its durable data
	}{
		{"fsync fails", func(j *Journal) { j.sync = func() error { return errInjected } }, errInjected, true},
		// The next batch must grow the file, and the full fsync of the
		// zeros fails: the batch fails before it is written.
		{"fsync of the zeros fails", func(j *Journal) {
			j.size = j.end
			j.fullSync = func() error { return errInjected }
		}, errInjected, true},
		{"fd closed underneath", func(j *Journal) { j.f.Close() }, os.ErrClosed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j")
			j, err := Open(path, Header{}, lower)
			if err != nil {
				t.Fatal(err)
			}
			mustRecord(t, j, Entry{Email: "ok@example.org", Status: Sent})
			end := j.end
			tt.break_(j)
			defer func() {
				// The failed batch is cut off: its intents must not read
				// back as unknown and keep those recipients from a rerun.
				var got []string
				if err := Read(path, func(e Entry) error { got = append(got, e.Email); return nil }); err != nil {
					t.Fatal(err)
				}
				if len(got) != 1 || got[0] != "ok@example.org" {
					t.Errorf("after the failure the file holds %v, want only the durable record", got)
				}
				if b, _ := os.ReadFile(path); tt.cut && (int64(len(b)) != end || bytes.IndexByte(b, 0) >= 0) {
					t.Errorf("after the failure the file holds %d bytes with a NUL at %d, want exactly the %d durable ones", len(b), bytes.IndexByte(b, 0), end)
				}
			}()
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Go(func() {
					errs[i] = j.Record(Entry{Email: fmt.Sprintf("w%d@example.org", i), Status: Sending})
				})
			}
			wg.Wait()
			for i, err := range errs {
				if !errors.Is(err, tt.want) {
					t.Errorf("Record %d: got %v, want %v", i, err, tt.want)
				}
			}
			if err := j.Record(Entry{Email: "later@example.org", Status: Sent}); !errors.Is(err, tt.want) {
				t.Errorf("later Record: got %v, want the sticky %v", err, tt.want)
			}
			if err := j.Queue(Entry{Email: "later@example.org", Status: Sent}); !errors.Is(err, tt.want) {
				t.Errorf("later Queue: got %v, want the sticky %v", err, tt.want)
			}
			if _, ok := j.Status("w0@example.org"); ok {
				t.Error("a record that failed to be durable changed the state")
			}
			if err := j.Close(); !errors.Is(err, tt.want) {
				t.Errorf("Close: got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir, Header{}, lower); err == nil {
		t.Error("Open(directory): got nil error")
	}
	if _, err := Open(filepath.Join(dir, "missing", "j"), Header{}, lower); err == nil {
		t.Error("Open in a missing folder: got nil error")
	}
}

// TestMemory checks the in-memory state of a million recipients, the
// size the brief names, stays well under 100 MB.
func TestMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a million entries")
	}
	j := &Journal{state: make(map[uint64]uint8), seed: maphash.MakeSeed()}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var buf []byte
	for i := range 1_000_000 {
		buf = fmt.Appendf(buf[:0], "recipient%d@example.org", i)
		j.apply(string(buf), Sent)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	used := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("state of 1,000,000 recipients: %.1f MB", float64(used)/(1<<20))
	if used > 60<<20 {
		t.Errorf("state of 1,000,000 recipients: got %d MB, want under 60 MB", used>>20)
	}
	if j.Counts().Sent != 1_000_000 {
		t.Errorf("Counts: got %+v, want 1,000,000 sent", j.Counts())
	}
	runtime.KeepAlive(j)
}

// A queued outcome rides with the next Record in one write and fsync,
// instead of costing an fsync of its own that the Record would wait out;
// alone, it is written within queueDelay.
func TestQueueRidesWithRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.journal")
	j := openT(t, path, Header{Campaign: "c"})
	if err := j.Queue(Entry{Row: 2, Email: "a@example.org", Status: Sent}); err != nil {
		t.Fatal(err)
	}
	if err := j.Record(Entry{Row: 3, Email: "b@example.org", Status: Sending}); err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	batches := j.batches
	j.mu.Unlock()
	if batches != 1 {
		t.Errorf("Queue then Record took %d writes, want 1", batches)
	}
	if st, ok := j.Status("a@example.org"); !ok || st != Sent {
		t.Errorf("queued entry after the Record: got %q %v, want sent", st, ok)
	}

	if err := j.Queue(Entry{Row: 4, Email: "c@example.org", Status: Sent}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, ok := j.Status("c@example.org"); ok && st == Sent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a queued entry alone was not written within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A skip recorded after another status (a bad row with the address of a
// message in flight) does not replace it, in the live state, on reload,
// and in Latest: otherwise a rerun would send that recipient again.
func TestSkippedNeverReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.journal")
	j := openT(t, path, Header{Campaign: "c"})
	for _, e := range []Entry{
		{Row: 2, Email: "ann@example.org", Status: Sending},
		{Row: 9, Email: "Ann@example.org", Status: Skipped, Reason: "invalid"},
		{Row: 3, Email: "bob@example.org", Status: Skipped, Reason: "suppressed"},
	} {
		if err := j.Record(e); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := j.Status("ann@example.org"); st != Unknown && st != Sending {
		t.Errorf("live: got %q, want the intent to stand", st)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j2 := openT(t, path, Header{Campaign: "c"})
	if st, _ := j2.Status("ann@example.org"); st != Unknown {
		t.Errorf("reloaded: got %q, want unknown", st)
	}
	if st, _ := j2.Status("bob@example.org"); st != Skipped {
		t.Errorf("reloaded: got %q for a first skip, want skipped", st)
	}
	j2.Close()
	rep, err := Latest(path, lower)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rep.Recipients {
		if lower(e.Email) == "ann@example.org" && e.Status != Unknown {
			t.Errorf("Latest: got %q, want unknown", e.Status)
		}
	}
}

// TestGather checks that with Gather(n) a Flush waits for the other n-1
// before the batch is written, so n workers share one sync, and that a
// lone Flush still returns once the wait is over.
func TestGather(t *testing.T) {
	j, err := Open(filepath.Join(t.TempDir(), "g.journal"), Header{Campaign: "c"}, lower)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	j.Gather(4, time.Minute)
	done := make(chan error, 4)
	flush := func(i int) {
		if err := j.Queue(Entry{Email: fmt.Sprintf("w%d@example.org", i), Status: Sending}); err != nil {
			done <- err
			return
		}
		done <- j.Flush()
	}
	for i := range 3 {
		go flush(i)
	}
	// Three wait on the batch; none may be answered before the fourth.
	deadline := time.Now().Add(10 * time.Second)
	for {
		j.mu.Lock()
		n := j.cur.flushers
		j.mu.Unlock()
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d flushers after 10s, want 3", n)
		}
		runtime.Gosched()
	}
	select {
	case err := <-done:
		t.Fatalf("a Flush returned (%v) before the fourth worker came", err)
	default:
	}
	go flush(3)
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	j.mu.Lock()
	batches := j.batches
	j.mu.Unlock()
	if batches != 1 {
		t.Errorf("%d batches for four workers, want one", batches)
	}

	// A lone worker waits no longer than the gather wait.
	j.Gather(4, 20*time.Millisecond)
	start := time.Now()
	flush(9)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 20*time.Millisecond {
		t.Errorf("a lone Flush returned after %v, before the gather wait of 20ms", waited)
	}
}
