package journal

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.journal")
	j, err := Open(path, Header{Campaign: "x", Command: "send"}, lower)
	if err != nil {
		t.Fatal(err)
	}
	entries := []Entry{
		{Row: 3, Email: "-bob@example.org", Status: Sent, MessageID: "m2@x", Attempts: 1, Reply: &Reply{Code: 250, Text: "+OK queued"}},
		{Row: 2, Email: "ann@example.org", Status: Failed, Attempts: 1, Error: "=cmd|' /C calc'!A0",
			Reply: &Reply{Code: 550, Enhanced: "5.1.1", Text: "@SUM(1+1)"}},
		{Row: 4, Email: "cy@example.org", Status: Sending, MessageID: "m4@x"},
	}
	for _, en := range entries {
		if err := j.Record(en); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	if err := WriteReport(&buf, path, "csv", lower); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("parse report: %v\n%s", err, buf.String())
	}
	want := [][]string{
		{"row", "email", "status", "reason", "code", "enhanced", "reply", "message_id", "attempts", "time", "error"},
		{"2", "ann@example.org", "failed", "", "550", "5.1.1", "'@SUM(1+1)", "", "1", "", "'=cmd|' /C calc'!A0"},
		{"3", "'-bob@example.org", "sent", "", "250", "", "'+OK queued", "m2@x", "1", "", ""},
		// An intent without an outcome reads as unknown.
		{"4", "cy@example.org", "unknown", "", "", "", "", "m4@x", "0", "", ""},
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d:\n%s", len(rows), len(want), buf.String())
	}
	for i := range want {
		if len(rows[i]) != len(want[i]) {
			t.Fatalf("row %d: got %q, want %q", i, rows[i], want[i])
		}
		for k := range want[i] {
			if k == 9 && i > 0 {
				if _, err := time.Parse(time.RFC3339, rows[i][k]); err != nil {
					t.Errorf("row %d: got time %q, want RFC 3339 UTC", i, rows[i][k])
				}
				continue
			}
			if rows[i][k] != want[i][k] {
				t.Errorf("row %d, %s: got %q, want %q", i, want[0][k], rows[i][k], want[i][k])
			}
		}
	}

	buf.Reset()
	if err := WriteReport(&buf, path, "json", lower); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&buf)
	var got []Entry
	for dec.More() {
		var en Entry
		if err := dec.Decode(&en); err != nil {
			t.Fatal(err)
		}
		got = append(got, en)
	}
	if len(got) != 3 || got[0].Error != "=cmd|' /C calc'!A0" || got[1].Email != "-bob@example.org" || got[2].Status != Unknown {
		t.Errorf("json: got %+v, want the three entries unescaped, in row order", got)
	}

	if err := WriteReport(&buf, path, "xml", lower); err == nil || !strings.Contains(err.Error(), "csv or json") {
		t.Errorf("got %v, want an error naming the formats", err)
	}
	if err := WriteReport(&buf, filepath.Join(t.TempDir(), "none.journal"), "csv", lower); err == nil {
		t.Error("got no error for a missing journal, want one")
	}
}
