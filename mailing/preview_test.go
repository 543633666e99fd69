package mailing

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestExamples runs check and preview on every folder under examples/, so
// the examples cannot rot: each must check clean, and every .eml must parse
// back with a Subject and a To.
func TestExamples(t *testing.T) {
	dirs, err := filepath.Glob("../examples/*/campaign.yaml")
	if err != nil || len(dirs) < 3 {
		t.Fatalf("got examples %v, %v, want at least 3", dirs, err)
	}
	for _, path := range dirs {
		name := filepath.Base(filepath.Dir(path))
		t.Run(name, func(t *testing.T) {
			c := mustLoad(t, path)
			var out bytes.Buffer
			rep, err := Check(context.Background(), c, &out)
			if err != nil || rep.Errors != 0 || rep.Warnings != 0 || rep.OK == 0 {
				t.Fatalf("check: got %+v, %v\n%s", rep, err, out.String())
			}
			dir := t.TempDir()
			out.Reset()
			rep, err = Preview(context.Background(), c, dir, 0, &out)
			if err != nil || rep.Errors != 0 {
				t.Fatalf("preview: got %+v, %v\n%s", rep, err, out.String())
			}
			files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
			want := rep.OK
			if c.Mode == "group" {
				want = 1
			}
			if len(files) != want || rep.Written != want {
				t.Fatalf("got %d files (%d written), want %d", len(files), rep.Written, want)
			}
			for _, f := range files {
				h := parseEML(t, f)
				if h.Get("Subject") == "" || h.Get("To") == "" || h.Get("From") == "" || h.Get("Message-Id") == "" {
					t.Errorf("%s: got header %v, want From, To, Subject and Message-ID", filepath.Base(f), h)
				}
			}
			if !strings.HasPrefix(out.String(), "preview: ") {
				t.Errorf("got output %q, want the preview summary", out.String())
			}
		})
	}
}

func TestPreviewFiles(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"campaign.yaml":  baseYAML + "suppress: [stop.txt]\n",
		"recipients.csv": "email,first_name\nann@example.org,Ann\nbad,B\nbob+news@example.org,Bob\n\"c/d@example.org\",C\nstop@example.org,S\n",
		"stop.txt":       "stop@EXAMPLE.org\n",
	})
	c := mustLoad(t, dir)
	outDir := filepath.Join(t.TempDir(), "out")
	var out bytes.Buffer
	rep, err := Preview(context.Background(), c, outDir, 0, &out)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(outDir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".eml") { // the gallery's pages are tested in gallery_test.go
			got = append(got, e.Name())
		}
	}
	want := []string{"00002-ann@example.org.eml", "00004-bob+news@example.org.eml", "00005-c_d@example.org.eml"}
	if !slices.Equal(got, want) {
		t.Errorf("got files %v, want %v (no temporary files left)", got, want)
	}
	if rep.Written != 3 || rep.Errors != 1 || rep.Suppressed != 1 {
		t.Errorf("got %+v, want 3 written, 1 error, 1 suppressed", rep)
	}
	h := parseEML(t, filepath.Join(outDir, want[0]))
	if h.Get("Subject") != "Hi Ann" {
		t.Errorf("got subject %q, want %q", h.Get("Subject"), "Hi Ann")
	}
	if !strings.Contains(out.String(), "recipients.csv:3: email: invalid address") ||
		!strings.Contains(out.String(), "recipients.csv:6: email: skipped: suppressed") {
		t.Errorf("got output\n%s\nwant the bad and the suppressed row", out.String())
	}
}

func TestPreviewLimit(t *testing.T) {
	var csv strings.Builder
	csv.WriteString("email,first_name\n")
	for i := range 50 {
		csv.WriteString("u" + string(rune('a'+i%26)) + strings.Repeat("x", i/26) + "@example.org,U\n")
	}
	c := mustLoad(t, writeFiles(t, map[string]string{"recipients.csv": csv.String()}))
	outDir := t.TempDir()
	rep, err := Preview(context.Background(), c, outDir, 7, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := filepath.Glob(filepath.Join(outDir, "*.eml"))
	for i, e := range entries {
		entries[i] = filepath.Base(e)
	}
	if rep.Written != 7 || len(entries) != 7 || entries[0] != "00002-ua@example.org.eml" || entries[6] != "00008-ug@example.org.eml" {
		t.Errorf("got %d written, files %v, want the first 7 rows", rep.Written, entries)
	}
}

func TestPreviewCancelled(t *testing.T) {
	c := mustLoad(t, writeFiles(t, nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	outDir := t.TempDir()
	_, err := Preview(ctx, c, outDir, 0, &bytes.Buffer{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	if entries, _ := os.ReadDir(outDir); len(entries) != 0 {
		t.Errorf("got files %v after cancel before start, want none", entries)
	}
}

func TestEmlName(t *testing.T) {
	tests := []struct {
		row        int
		addr, want string
	}{
		{7, "ann@example.org", "00007-ann@example.org.eml"},
		{123456, "a/../b@x", "123456-a_.._b@x.eml"},
		{2, `we"ird\x@x`, "00002-we_ird_x@x.eml"},
		{3, "zoë@x", "00003-zo_@x.eml"},
	}
	for _, tt := range tests {
		if got := emlName(tt.row, tt.addr); got != tt.want {
			t.Errorf("emlName(%d, %q): got %q, want %q", tt.row, tt.addr, got, tt.want)
		}
	}
}

// A long but legal address still gives a preview file name the file
// system takes (255 bytes, with the temporary suffix).
func TestEmlNameLongAddress(t *testing.T) {
	addr := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 180) + ".example"
	n := emlName(7, addr)
	if len(n)+28 > 255 {
		t.Errorf("name of %d bytes, too long with the temporary suffix", len(n))
	}
	if n == emlName(7, addr[:len(addr)-1]+"x") {
		t.Error("two long addresses share a file name")
	}
}
