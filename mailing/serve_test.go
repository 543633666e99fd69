package mailing

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mailrun/mailrun/gallery"
)

// serveList has a good row, a bad address, a row whose template fails and
// a last good row.
const serveList = "email,first_name,plan\nann@example.org,Ann,pro\nbad,B,pro\ncy@example.org,Cy,\ndee@example.org,Dee,free\n"

func TestRenderOne(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"recipients.csv": serveList,
		"body.md":        "Hello {{.first_name}}\n\n{{if not .plan}}{{.missing}}{{end}}\n",
	})
	c := mustLoad(t, dir)
	for _, tc := range []struct {
		pick             string
		row, prev, next  int
		message, problem string
	}{
		{pick: "", row: 2, next: 3, message: "Hello Ann"},
		{pick: "2", row: 2, next: 3, message: "Hello Ann"},
		{pick: "DEE@example.org", row: 5, prev: 4, message: "Hello Dee"},
		{pick: "3", row: 3, prev: 2, next: 4, problem: "recipients.csv:3: email: "},
		{pick: "4", row: 4, prev: 3, next: 5, problem: `recipients.csv:4: body: body.md:3: no column "missing"`},
	} {
		t.Run("pick="+tc.pick, func(t *testing.T) {
			r, err := RenderOne(context.Background(), c, tc.pick)
			if err != nil {
				t.Fatal(err)
			}
			if r.Row != tc.row || r.Prev != tc.prev || r.Next != tc.next {
				t.Errorf("got row %d prev %d next %d, want %d %d %d", r.Row, r.Prev, r.Next, tc.row, tc.prev, tc.next)
			}
			var ps []string
			for _, p := range r.Problems {
				ps = append(ps, inFolder(dir, p.String()))
			}
			got := strings.Join(ps, "\n")
			if tc.problem == "" && (got != "" || !strings.Contains(string(r.Data), tc.message)) {
				t.Errorf("got problems %q and a message without %q:\n%s", got, tc.message, r.Data)
			}
			if tc.problem != "" && (!strings.HasPrefix(got, tc.problem) || r.Data != nil) {
				t.Errorf("got problems %q (message %v), want %q and no message", got, r.Data != nil, tc.problem)
			}
		})
	}
	if _, err := RenderOne(context.Background(), c, "nobody@example.org"); !errors.Is(err, ErrNoRecipient) {
		t.Errorf("got %v, want ErrNoRecipient", err)
	}
}

// TestRenderOneBrokenTemplate: a template that does not parse is check's
// campaign problem, with the template's file and line, and no message.
func TestRenderOneBrokenTemplate(t *testing.T) {
	dir := writeFiles(t, map[string]string{"recipients.csv": serveList, "body.md": "Hello\n{{.first_name\n"})
	c := mustLoad(t, dir)
	r, err := RenderOne(context.Background(), c, "2")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 1 || !strings.Contains(r.Problems[0].String(), "body.md:3: unclosed action") || r.Data != nil || r.Next != 3 {
		t.Errorf("got %+v, want one problem naming body.md:3 and no message", r)
	}
}

func TestRenderOneGroup(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"campaign.yaml": strings.Replace(baseYAML, "Hi {{.first_name}}", "News", 1) +
			"mode: group\ngroup: {to: \"Team <team@acme.example>\"}\n",
		"recipients.csv": serveList,
		"body.md":        "Hello all\n",
	})
	r, err := RenderOne(context.Background(), mustLoad(t, dir), "4")
	if err != nil {
		t.Fatal(err)
	}
	if r.Row != 0 || r.Name != "group.eml" || !strings.Contains(string(r.Data), "Hello all") {
		t.Errorf("got row %d %q %v, want the group message:\n%s", r.Row, r.Name, r.Problems, r.Data)
	}
}

// TestIndex: the index has every row, the rows' problems as check words
// them, and the messages' subjects.
func TestIndex(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"recipients.csv": serveList,
		"body.md":        "Hello {{.first_name}}\n\n{{if not .plan}}{{.missing}}{{end}}\n",
	})
	g := gallery.Collect(10)
	rep, err := Index(context.Background(), mustLoad(t, dir), g)
	if err != nil {
		t.Fatal(err)
	}
	x := g.Index()
	if x.Count != 4 || len(x.Entries) != 4 || rep.OK != 2 {
		t.Fatalf("got %d rows, %d entries, %d ok, want 4, 4, 2", x.Count, len(x.Entries), rep.OK)
	}
	for i, want := range []struct {
		row            int
		subject, issue string
	}{{2, "Hi Ann", ""}, {3, "", "recipients.csv:3: email"}, {4, "", `body.md:3: no column "missing"`}, {5, "Hi Dee", ""}} {
		e := x.Entries[i]
		issues := strings.Join(e.Problems, "\n")
		if e.Row != want.row || e.Subject != want.subject || (want.issue == "") != (issues == "") || !strings.Contains(issues, want.issue) {
			t.Errorf("entry %d: got row %d %q %q, want %d %q %q", i, e.Row, e.Subject, issues, want.row, want.subject, want.issue)
		}
	}
}
