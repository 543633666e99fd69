package journal

import (
	"errors"
	"io/fs"
	"path/filepath"
	"testing"
)

// Peek reads what Open would load, without the lock, and tells whether a
// run holds the journal now.
func TestPeek(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.journal")
	if _, err := Peek(path, lower); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got %v for a missing journal, want fs.ErrNotExist", err)
	}
	j := openT(t, path, Header{Campaign: "c", Fingerprint: "f1"})
	mustRecord(t, j, Entry{Email: "Ann@example.org", Status: Sent}, Entry{Email: "bob@example.org", Status: Sending})
	s, err := Peek(path, lower)
	if err != nil {
		t.Fatal(err)
	}
	if !s.InUse || s.Began.Fingerprint != "f1" {
		t.Errorf("got in use %v, began %+v; want in use and the begin header", s.InUse, s.Began)
	}
	if st, _ := s.Status("ann@EXAMPLE.org"); st != Sent {
		t.Errorf("got %q for ann, want sent", st)
	}
	if st, _ := s.Status("bob@example.org"); st != Sending {
		t.Errorf("got %q for bob while the run holds the journal, want sending (in flight)", st)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Peek(path, lower)
	if err != nil {
		t.Fatal(err)
	}
	if s.InUse || s.Counts().Sent != 1 {
		t.Errorf("got in use %v, counts %+v after Close; want free, 1 sent", s.InUse, s.Counts())
	}
}
