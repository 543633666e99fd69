package journal

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Lines of a journal written by hand, as the crash tests below lay them
// out on disk.
const (
	zBegin = `{"type":"begin","time":"2026-11-25T10:00:00Z","fingerprint":"f","version":1}` + "\n"
	zSentA = `{"time":"2026-11-25T10:00:00Z","row":1,"email":"a@example.org","status":"sent"}` + "\n"
	zIntC  = `{"time":"2026-11-25T10:00:00Z","row":2,"email":"c@example.org","status":"sending"}` + "\n"
	zSentC = `{"time":"2026-11-25T10:00:00Z","row":2,"email":"c@example.org","status":"sent"}`
)

func nul(n int) string { return strings.Repeat("\x00", n) }

// fileBytes reads path, failing the test on error.
func fileBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkExact checks that a closed journal is exactly its lines: no zeros
// left after the data, and a newline at the end.
func checkExact(t *testing.T, path string) {
	t.Helper()
	b := fileBytes(t, path)
	if i := bytes.IndexByte(b, 0); i >= 0 {
		t.Errorf("closed journal holds a NUL at offset %d of %d", i, len(b))
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Errorf("closed journal ends with %q, want a newline", b[len(b)-1:])
	}
}

// TestZeroTail lays out what a crash can leave after Journal.grow: the
// data, maybe a torn line, then zeros. Readers stop at the zeros; Open
// keeps or cuts the torn line as for a file without zeros, and cuts the
// zeros.
func TestZeroTail(t *testing.T) {
	tests := []struct {
		name    string
		content string
		read    int    // entries Read returns
		c       Status // c's status once Open has loaded the file
		end     int    // the file's size right after Open repaired it
	}{
		{"entries then zeros", zBegin + zSentA + zIntC + nul(4096), 2, Unknown, len(zBegin + zSentA + zIntC)},
		{"torn line then zeros", zBegin + zSentA + zIntC + zSentC[:30] + nul(4096), 2, Unknown, len(zBegin + zSentA + zIntC)},
		{"one byte then zeros", zBegin + zSentA + zIntC + "{" + nul(10), 2, Unknown, len(zBegin + zSentA + zIntC)},
		// A complete record that only lacks its newline is kept.
		{"newline missing then zeros", zBegin + zSentA + zIntC + zSentC + nul(4096), 3, Sent, len(zBegin+zSentA+zIntC+zSentC) + 1},
		{"newline missing at the end", zBegin + zSentA + zIntC + zSentC, 3, Sent, len(zBegin+zSentA+zIntC+zSentC) + 1},
		{"zeros longer than the read buffer", zBegin + zSentA + zIntC + nul(growChunk+7), 2, Unknown, len(zBegin + zSentA + zIntC)},
		{"torn begin then zeros", zBegin[:20] + nul(100), 0, "", 0},
		{"only zeros", nul(growChunk), 0, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			// Readers tolerate the zeros without repairing them.
			if n := len(readAll(t, path)); n != tt.read {
				t.Errorf("Read: got %d entries, want %d", n, tt.read)
			}
			rep, err := Latest(path, lower)
			if err != nil {
				t.Fatalf("Latest: %v", err)
			}
			if tt.c != "" {
				if got := rep.Recipients[len(rep.Recipients)-1]; got.Email != "c@example.org" || got.Status != tt.c {
					t.Errorf("Latest: got %s %q, want c@example.org %q", got.Email, got.Status, tt.c)
				}
			}
			if b := fileBytes(t, path); string(b) != tt.content {
				t.Error("a reader changed the file")
			}

			j := openT(t, path, Header{Fingerprint: "g"})
			if got, _ := j.Status("c@example.org"); got != tt.c {
				t.Errorf("Status(c): got %q, want %q", got, tt.c)
			}
			if got := len(fileBytes(t, path)); got != tt.end {
				t.Errorf("size after Open: got %d, want %d (torn line and zeros cut)", got, tt.end)
			}
			mustRecord(t, j, Entry{Row: 3, Email: "d@example.org", Status: Sent})
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			checkExact(t, path)
			got := readAll(t, path)
			if len(got) != tt.read+1 || got[len(got)-1].Email != "d@example.org" {
				t.Errorf("after the next run: got %+v, want %d entries ending with d", got, tt.read+1)
			}
		})
	}
}

// TestZeroCorruption: zeros are only ever a tail. Bytes after them, or a
// NUL inside a line followed by more lines, cannot come from a crash of
// this writer, so every reader refuses the file and names the line where
// the zeros start.
func TestZeroCorruption(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"data after zeros", zBegin + zSentA + nul(64) + zIntC, ":3: corrupt journal line: data at offset"},
		{"newline after zeros", zBegin + zSentA + nul(64) + "\n", ":3: corrupt journal line"},
		{"NUL inside a line", zBegin + strings.Replace(zSentA, "sent", "se\x00t", 1) + zIntC, ":2: corrupt journal line"},
		{"torn line, zeros, data", zBegin + zSentC[:30] + nul(64) + "x", ":2: corrupt journal line"},
		{"data far past the read buffer", zBegin + nul(200<<10) + "x" + nul(10), ":2: corrupt journal line: data at offset " + fmt.Sprint(len(zBegin)+200<<10)},
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
			_, err = ReadIndex(path, lower)
			check("ReadIndex", err)
			if b := fileBytes(t, path); string(b) != tt.content {
				t.Error("a refused journal was changed")
			}
		})
	}
}

// TestCrashCopy copies the file of an open journal, as a crash would leave
// it: the data, then the zeros written ahead of it.
func TestCrashCopy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "j")
	j := openT(t, path, Header{Fingerprint: "f"})
	mustRecord(t, j,
		Entry{Row: 1, Email: "a@example.org", Status: Sending},
		Entry{Row: 1, Email: "a@example.org", Status: Sent},
		Entry{Row: 2, Email: "b@example.org", Status: Sending},
	)
	b := fileBytes(t, path)
	if len(b) != growChunk || b[len(b)-1] != 0 {
		t.Fatalf("open journal: got %d bytes ending %q, want %d ending in zeros", len(b), b[len(b)-1:], growChunk)
	}
	crashed := filepath.Join(dir, "crashed")
	if err := os.WriteFile(crashed, b, 0o644); err != nil {
		t.Fatal(err)
	}
	want := map[string]Status{"a@example.org": Sent, "b@example.org": Unknown}

	rep, err := Latest(crashed, lower)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rep.Recipients {
		if e.Status != want[e.Email] {
			t.Errorf("Latest %s: got %q, want %q", e.Email, e.Status, want[e.Email])
		}
	}
	j2 := openT(t, crashed, Header{Fingerprint: "g"})
	for addr, st := range want {
		if got, _ := j2.Status(addr); got != st {
			t.Errorf("Status(%s) after the crash: got %q, want %q", addr, got, st)
		}
	}
	if got := j2.Began().Fingerprint; got != "f" {
		t.Errorf("Began: got %q, want f", got)
	}
	if err := j2.Close(); err != nil {
		t.Fatal(err)
	}
	checkExact(t, crashed)
	if n := len(readAll(t, crashed)); n != 3 {
		t.Errorf("after repair: got %d entries, want 3", n)
	}
}

// TestGrow writes batches that cross the end of the zeros, one of them
// longer than a whole chunk: each grows the file first, the data stays
// intact, and Close leaves exactly the lines.
func TestGrow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Header{})
	var want []Entry
	record := func(e Entry) {
		t.Helper()
		mustRecord(t, j, e)
		want = append(want, e)
		if j.end > j.size || j.size%growChunk != 0 {
			t.Fatalf("after %d entries: data ends at %d, zeros at %d, want the zeros past the data, at a multiple of %d", len(want), j.end, j.size, growChunk)
		}
		if st, err := os.Stat(path); err != nil || st.Size() != j.size {
			t.Fatalf("file size: got %v %v, want %d", st.Size(), err, j.size)
		}
	}
	pad := strings.Repeat("x", 300<<10)
	for i := range 4 { // the fourth crosses the first megabyte
		record(Entry{Time: t0, Row: i, Email: fmt.Sprintf("r%d@example.org", i), Status: Failed, Error: pad})
	}
	if j.size != 2*growChunk {
		t.Errorf("after 1.2 MB: zeros end at %d, want %d", j.size, 2*growChunk)
	}
	record(Entry{Time: t0, Row: 9, Email: "big@example.org", Status: Failed, Error: strings.Repeat("y", 3*growChunk)})
	if j.size != 5*growChunk { // 1.2 + 3 MiB of data, then zeros to 5
		t.Errorf("after a 3 MB batch: zeros end at %d, want %d", j.size, 5*growChunk)
	}
	end := j.end
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	checkExact(t, path)
	if got := int64(len(fileBytes(t, path))); got != end {
		t.Errorf("closed size: got %d, want %d", got, end)
	}
	got := readAll(t, path)
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Email != want[i].Email || got[i].Error != want[i].Error {
			t.Errorf("entry %d: got %s with %d bytes of error, want %s with %d", i, got[i].Email, len(got[i].Error), want[i].Email, len(want[i].Error))
		}
	}
}

// TestCloseExact: a clean Close leaves no zeros, whether the last batch
// went into them (Record, then Close) or was written by Close itself past
// them (Queue, then Close).
func TestCloseExact(t *testing.T) {
	for _, name := range []string{"record", "queue", "nothing after reopen"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j")
			j := openT(t, path, Header{})
			mustRecord(t, j, Entry{Email: "a@example.org", Status: Sent})
			switch name {
			case "record":
				mustRecord(t, j, Entry{Email: "b@example.org", Status: Sent})
			case "queue":
				if err := j.Queue(Entry{Email: "b@example.org", Status: Sent}); err != nil {
					t.Fatal(err)
				}
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			if name == "nothing after reopen" {
				before := fileBytes(t, path)
				j2 := openT(t, path, Header{})
				if err := j2.Close(); err != nil {
					t.Fatal(err)
				}
				if got := fileBytes(t, path); !bytes.Equal(got, before) {
					t.Errorf("a run that records nothing changed the file: %d bytes, then %d", len(before), len(got))
				}
			}
			checkExact(t, path)
		})
	}
}

// TestReadDuringRun reads a journal while a run writes it, as `mailrun
// status` does without the lock: every read succeeds and sees at least
// the entries that were durable when it began, stopping at the zeros.
func TestReadDuringRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Header{})
	mustRecord(t, j, Entry{Row: 0, Email: "r0@example.org", Status: Sent})
	if n := len(readAll(t, path)); n != 1 {
		t.Fatalf("Read of an open journal: got %d entries, want 1", n)
	}

	const workers, maxPer, reads = 4, 500, 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	durable := 1 // entries known durable so far
	stop := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			for i := range maxPer {
				select {
				case <-stop:
					return
				default:
				}
				addr := fmt.Sprintf("w%d-%d@example.org", w, i)
				if err := j.Record(Entry{Row: i, Email: addr, Status: Sent}); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				durable++
				mu.Unlock()
			}
		})
	}
	for i := range reads {
		mu.Lock()
		floor := durable
		mu.Unlock()
		n := 0
		if err := Read(path, func(Entry) error { n++; return nil }); err != nil {
			t.Fatalf("Read %d during the run: %v", i, err)
		}
		if n < floor {
			t.Fatalf("Read %d during the run: got %d entries, want at least %d", i, n, floor)
		}
		if _, err := Latest(path, lower); err != nil {
			t.Fatalf("Latest %d during the run: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(readAll(t, path)); n != durable {
		t.Errorf("Read after the run: got %d entries, want %d", n, durable)
	}
	t.Logf("%d entries written during %d reads", durable, reads)
}

// appendDuringRead is a file that a writer appends to while a reader goes
// through it: the first read past at puts p at at, as a batch written
// into the zeros just after the reader saw them.
type appendDuringRead struct {
	b    []byte
	at   int64
	p    []byte
	done bool
}

func (f *appendDuringRead) ReadAt(p []byte, off int64) (int, error) {
	if !f.done && off > f.at {
		copy(f.b[f.at:], f.p)
		f.done = true
	}
	if off >= int64(len(f.b)) {
		return 0, io.EOF
	}
	n := copy(p, f.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// TestScanRacesWriter: a reader that saw zeros and then data beyond them
// reads the first zero again; when a writer has filled it meanwhile, the
// data read so far is a snapshot, not corruption.
func TestScanRacesWriter(t *testing.T) {
	head := zBegin + zSentA
	const buf = 64 << 10 // the scanner's read buffer
	for _, tt := range []struct {
		name string
		at   int // where the data ends when the reader first sees it
	}{
		{"batch crosses the read buffer", buf - 10},
		{"batch far past it", 3 * buf},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := []byte(head + strings.Repeat(" ", tt.at-len(head)-1) + "\n" + nul(4*buf))
			f := &appendDuringRead{b: b, at: int64(tt.at), p: []byte(zIntC + zSentC + "\n")}
			var got []string
			s := scanner{path: "j"}
			ti, err := s.scan(f, func(r *record) error {
				if r.Type == "" {
					got = append(got, r.Email+" "+string(r.Status))
				}
				return nil
			})
			if err != nil {
				t.Fatalf("scan: %v", err)
			}
			if !f.done {
				t.Fatal("the writer never wrote: the test does not race")
			}
			if len(got) != 1 || got[0] != "a@example.org sent" {
				t.Errorf("got %q, want the snapshot before the append", got)
			}
			if ti.data != int64(tt.at) || ti.size != ti.data {
				t.Errorf("tail: got %+v, want data and size %d", ti, tt.at)
			}
		})
	}
}

// TestMarkBouncedAfterCrash: the bounce processor appends to a journal
// that a crashed send left with zeros.
func TestMarkBouncedAfterCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	content := zBegin + `{"time":"2026-11-25T10:00:00Z","row":1,"email":"a@example.org","status":"sent","message_id":"m1@acme.example"}` + "\n" + nul(4096)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := MarkBounced(path, Header{}, lower, []Bounce{{MessageID: "<m1@acme.example>"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Email != "a@example.org" {
		t.Fatalf("MarkBounced: got %+v, want a bounced", got)
	}
	checkExact(t, path)
	rep, err := Latest(path, lower)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Summary.Bounced != 1 {
		t.Errorf("after MarkBounced: got %+v, want a bounced", rep.Summary)
	}
}
