package mailing

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailrun/mailrun/campaign"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, rewriting it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestCheckOutput pins the exact output of check on a fixture with one
// problem of each kind: the format is the user interface.
func TestCheckOutput(t *testing.T) {
	c, err := campaign.Load("testdata/check")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep, err := Check(context.Background(), c, &out)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "check.golden", out.String())
	want := Report{Recipients: 8, OK: 1, Failed: 5, Duplicates: 1, Suppressed: 1, Errors: 5, Warnings: 2}
	rep.Elapsed = 0
	if *rep != want {
		t.Errorf("got %+v, want %+v", *rep, want)
	}
}

func TestCheckTemplateMissingColumn(t *testing.T) {
	dir := writeFiles(t, map[string]string{"body.md": "Hi {{.first_name}}, plan {{.plan}}\n",
		"recipients.csv": "email,first_name\na@x.example,A\nb@x.example,B\n"})
	var out bytes.Buffer
	rep, err := Check(context.Background(), mustLoad(t, dir), &out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 2 || rep.OK != 0 {
		t.Errorf("got %+v, want 2 errors", rep)
	}
	// The second row has the same problem: it is not printed again but
	// summed up with its rows.
	lines := strings.Split(strings.TrimSpace(inFolder(dir, out.String())), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "recipients.csv:2: body: ") || !strings.Contains(lines[0], "plan") ||
		!strings.HasPrefix(lines[1], "recipients.csv: body: ") || !strings.HasSuffix(lines[1], "(the same in 2 rows: 2-3)") {
		t.Errorf("got\n%s\nwant a body error naming plan on row 2, then its repeat on rows 2-3", out.String())
	}
	if lines[2] != "check: 2 recipients, 0 ok, 2 errors, 0 warnings, 0 suppressed" {
		t.Errorf("got summary %q", lines[2])
	}
}

// TestCheckConfigProblems: check prints the campaign file's problems and
// still reads the recipients.
func TestCheckConfigProblems(t *testing.T) {
	dir := writeFiles(t, map[string]string{"campaign.yaml": baseYAML + "send:\n  rate: fast\n",
		"recipients.csv": "email,first_name\nbad,A\n"})
	c, err := campaign.Load(dir)
	if c == nil || err == nil {
		t.Fatalf("got %v, %v, want a campaign and its problems", c, err)
	}
	var out bytes.Buffer
	rep, err := Check(context.Background(), c, &out)
	if err != nil {
		t.Fatal(err)
	}
	want := "campaign.yaml:7: send.rate: \"fast\" is not N/s, N/m or N/h\n" +
		"recipients.csv:2: email: invalid address \"bad\": missing '@' or angle-addr\n" +
		"check: 1 recipient, 0 ok, 2 errors, 0 warnings, 0 suppressed\n"
	if got := inFolder(dir, out.String()); got != want || rep.Errors != 2 {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestCheckGroup(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"campaign.yaml":  baseYAML + "mode: group\ngroup:\n  to: Team <team@x.example>\n",
		"body.md":        "Hello team\n",
		"recipients.csv": "email,first_name\na@x.example,A\nbad,B\nb@x.example,C\n",
	})
	var out bytes.Buffer
	c := mustLoad(t, dir)
	c.Subject = "Team news" // the group message has no row data
	rep, err := Check(context.Background(), c, &out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK != 2 || rep.Errors != 1 || rep.Failed != 1 {
		t.Errorf("got %+v\n%s, want 2 ok and 1 error", rep, out.String())
	}
}

func TestCheckCancelled(t *testing.T) {
	c := mustLoad(t, writeFiles(t, nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Check(ctx, c, &bytes.Buffer{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

// parseEML parses a written message and returns its header.
func parseEML(t *testing.T, path string) mail.Header {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := mail.ReadMessage(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m.Header
}

// TestCheckBrokenTemplate: a template that does not parse is a problem on
// the campaign key naming it, and check still reads the CSV.
func TestCheckBrokenTemplate(t *testing.T) {
	c := mustLoad(t, writeFiles(t, map[string]string{"body.md": "Hi {{.first_name\n"}))
	var out bytes.Buffer
	rep, err := Check(context.Background(), c, &out)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(inFolder(c.Dir(), out.String()), "\n")[0]
	if !strings.HasPrefix(got, "campaign.yaml:4: body: ") || !strings.Contains(got, "body.md:") || rep.Errors != 1 || rep.Recipients != 1 {
		t.Errorf("got %q and %+v, want a body problem on line 4 naming body.md", got, rep)
	}
}

// The campaign init writes checks clean and renders for both its rows.
func TestInitChecksClean(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	if err := campaign.Init(dir); err != nil {
		t.Fatal(err)
	}
	c := mustLoad(t, dir)
	var out bytes.Buffer
	rep, err := Check(context.Background(), c, &out)
	if err != nil || rep.Errors != 0 || rep.OK != 2 {
		t.Fatalf("check of the initial campaign: got %+v, %v\n%s", rep, err, out.String())
	}
}

// A typo in a template fails every row alike: 4,000 rows print the
// problem once, then one line with the count and the rows, not 4,000 lines.
func TestCheckGroupsRepeatedProblems(t *testing.T) {
	var csv strings.Builder
	csv.WriteString("email,first_name\n")
	for i := range 4000 {
		fmt.Fprintf(&csv, "r%d@example.org,R%d\n", i, i)
	}
	csv.WriteString("not-an-address,X\n")
	dir := writeFiles(t, map[string]string{"body.md": "Hi {{.firstname}}\n", "recipients.csv": csv.String()})
	var out bytes.Buffer
	rep, err := Check(context.Background(), mustLoad(t, dir), &out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 4001 || rep.Failed != 4001 {
		t.Errorf("got %+v, want 4,001 errors counted", rep)
	}
	lines := strings.Split(strings.TrimSpace(inFolder(dir, out.String())), "\n")
	want := []string{
		"recipients.csv:2: body: ",
		"recipients.csv:4002: email: invalid address",
		"recipients.csv: body: ",
		"check: 4001 recipients, 0 ok, 4001 errors",
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines:\n%s\nwant %d", len(lines), out.String(), len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: got %q, want it to start with %q", i+1, lines[i], w)
		}
	}
	if !strings.HasSuffix(lines[2], "(the same in 4,000 rows: 2-4001)") {
		t.Errorf("got %q, want the count and the rows", lines[2])
	}
}

// A message over 10 MB gets a warning from check: many relays refuse it.
func TestCheckWarnsBigMessages(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 11<<20/16) // 11 MB, 14.7 MB in base64
	dir := writeFiles(t, map[string]string{
		"campaign.yaml":  baseYAML + "attachments: [big.txt]\n",
		"big.txt":        big,
		"recipients.csv": "email,first_name\na@x.example,A\nb@x.example,B\n",
	})
	var out bytes.Buffer
	rep, err := Check(context.Background(), mustLoad(t, dir), &out)
	if err != nil {
		t.Fatal(err)
	}
	got := inFolder(dir, out.String())
	if rep.Warnings != 2 || rep.Errors != 0 || !strings.Contains(got, "recipients.csv:2: size: warning: message over 10 MB") ||
		!strings.Contains(got, "(the same in 2 rows: 2-3)") {
		t.Errorf("got %+v\n%s\nwant a size warning for both rows, grouped", rep, got)
	}
}

// check shows every problem of a row in one run, a missing column with
// the columns there are and the closest one.
func TestCheckEveryProblemOfARow(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"campaign.yaml":  strings.Replace(baseYAML, `"Hi {{.first_name}}"`, `"Hi {{.frist_name}}"`, 1),
		"body.md":        "Hello {{.firstname}}, your plan: {{.plan}}\n",
		"recipients.csv": "email,first_name\na@x.example,A\n",
	})
	var out bytes.Buffer
	if _, err := Check(context.Background(), mustLoad(t, dir), &out); err != nil {
		t.Fatal(err)
	}
	got := inFolder(dir, out.String())
	for _, want := range []string{
		`recipients.csv:2: subject: `, `no column "frist_name"`, `did you mean "first_name"?`,
		`recipients.csv:2: body: `, `no column "firstname"`, `no column "plan"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("got\n%s\nwant %q", got, want)
		}
	}
}

// check warns, once per template, about what mail clients drop; and
// body.inline_css: false is read from the campaign file.
func TestCheckWarnsWhatMailClientsDrop(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"campaign.yaml":  baseYAML + "  layout: layout.html\n  inline_css: false\n",
		"layout.html":    "<html><body><script>track()</script><form action=\"/x\"></form>{{.Body}}</body></html>\n",
		"recipients.csv": "email,first_name\na@x.example,A\nb@x.example,B\n",
	})
	c := mustLoad(t, dir)
	if c.Body.InlineCSS == nil || *c.Body.InlineCSS {
		t.Errorf("got inline_css %v, want false read from the file", c.Body.InlineCSS)
	}
	var out bytes.Buffer
	rep, err := Check(context.Background(), c, &out)
	if err != nil {
		t.Fatal(err)
	}
	got := inFolder(dir, out.String())
	if strings.Count(got, "<script>") != 1 || strings.Count(got, "<form>") != 1 || !strings.Contains(got, "body.layout: warning: ") {
		t.Errorf("got\n%s\nwant one warning each for <script> and <form> on body.layout", got)
	}
	if rep.Errors != 0 || rep.OK != 2 {
		t.Errorf("got %+v, want warnings only", rep)
	}
}
