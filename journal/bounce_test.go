package journal

import (
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"testing"
)

// bounceJournal writes a journal of a finished run: an individual message
// per recipient plus one group message to g1 and g2.
func bounceJournal(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Header{Command: "send"})
	mustRecord(t, j,
		Entry{Row: 1, Email: "Ann@Example.org", Status: Sending, MessageID: "<m1@acme.example>"},
		Entry{Row: 1, Email: "Ann@Example.org", Status: Sent, MessageID: "<m1@acme.example>"},
		Entry{Row: 2, Email: "bob@example.org", Status: Sent, MessageID: "<m2@acme.example>"},
		Entry{Row: 3, Email: "cy@example.org", Status: Failed, MessageID: "<m3@acme.example>"},
		Entry{Row: 4, Email: "di@example.org", Status: Sending, MessageID: "<m4@acme.example>"}, // crashed
		Entry{Row: 5, Email: "ed@example.org", Status: Skipped, Reason: "suppressed"},
		Entry{Row: 6, Email: "g1@example.org", Status: Sent, MessageID: "<grp@acme.example>"},
		Entry{Row: 7, Email: "g2@example.org", Status: Sent, MessageID: "<grp@acme.example>"},
	)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestIndexMatch(t *testing.T) {
	path := bounceJournal(t)
	tests := []struct {
		name    string
		bounces []Bounce
		want    []string // emails marked, in order
	}{
		{"by message id without brackets", []Bounce{{MessageID: "m1@acme.example"}}, []string{"Ann@Example.org"}},
		{"by message id, forwarded address", []Bounce{{MessageID: "<m2@acme.example>", Email: "bob@elsewhere.example"}}, []string{"bob@example.org"}},
		{"by address, any case", []Bounce{{Email: "ANN@example.org"}}, []string{"Ann@Example.org"}},
		{"crashed intent may have been delivered", []Bounce{{Email: "di@example.org"}}, []string{"di@example.org"}},
		{"failed recipient was never mailed", []Bounce{{Email: "cy@example.org"}}, nil},
		{"skipped recipient was never mailed", []Bounce{{Email: "ed@example.org"}}, nil},
		{"stranger", []Bounce{{Email: "x@example.org", MessageID: "<other@x>"}}, nil},
		{"group message picks the named recipient", []Bounce{{MessageID: "<grp@acme.example>", Email: "g2@example.org"}}, []string{"g2@example.org"}},
		{"group message without address matches nobody", []Bounce{{MessageID: "<grp@acme.example>"}}, nil},
		{"twice for one recipient", []Bounce{{Email: "bob@example.org"}, {MessageID: "<m2@acme.example>"}}, []string{"bob@example.org"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix, err := ReadIndex(path, lower)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range ix.Match(tt.bounces) {
				if e.Status != Bounced {
					t.Errorf("%s: got status %q, want bounced", e.Email, e.Status)
				}
				got = append(got, e.Email)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIndexLookups(t *testing.T) {
	ix, err := ReadIndex(bounceJournal(t), lower)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := ix.ByEmail(" ann@EXAMPLE.org"); !ok || e.Row != 1 || e.Status != Sent {
		t.Errorf("ByEmail(ann): got %+v %v, want row 1 sent", e, ok)
	}
	if e, ok := ix.ByEmail("di@example.org"); !ok || e.Status != Unknown {
		t.Errorf("ByEmail(di): got %+v %v, want unknown", e, ok)
	}
	if got := ix.ByMessageID("grp@acme.example"); len(got) != 2 || got[0].Row != 6 || got[1].Row != 7 {
		t.Errorf("ByMessageID(grp): got %+v, want rows 6 and 7", got)
	}
	if got := ix.ByMessageID("<nope@x>"); got != nil {
		t.Errorf("ByMessageID(nope): got %+v, want none", got)
	}
}

func TestMarkBounced(t *testing.T) {
	path := bounceJournal(t)
	bounces := []Bounce{
		{MessageID: "<m1@acme.example>", Email: "ann@example.org", Reply: Reply{Enhanced: "5.1.1", Text: "user unknown"}},
		{Email: "stranger@example.org"},
	}
	got, err := MarkBounced(path, Header{}, lower, bounces)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Email != "Ann@Example.org" || got[0].Reply.Enhanced != "5.1.1" || got[0].Row != 1 {
		t.Fatalf("MarkBounced: got %+v, want ann bounced with 5.1.1", got)
	}
	rep, err := Latest(path, lower)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Summary.Bounced != 1 || rep.Recipients[0].Status != Bounced {
		t.Errorf("after MarkBounced: got %+v, want ann bounced", rep.Summary)
	}
	if len(rep.Runs) != 1 || rep.Runs[0].Command != "bounces" {
		t.Errorf("runs: got %+v, want one bounces run", rep.Runs)
	}
	// Processing the same mailbox again marks nothing twice.
	again, err := MarkBounced(path, Header{}, lower, bounces)
	if err != nil || len(again) != 0 {
		t.Errorf("second MarkBounced: got %+v, %v, want nothing", again, err)
	}

	if _, err := MarkBounced(filepath.Join(t.TempDir(), "missing"), Header{}, lower, bounces); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("MarkBounced on a missing journal: got %v, want ErrNotExist", err)
	}
}
