package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The readers test reads every message preview writes for the examples as
// two readers that share nothing with mailrun do: Go's net/mail and
// mime/multipart, and Python's email package with policy.default, the
// parser behind many scripts, filters and archivers. A header folded right
// after its colon (RFC 5322 section 2.2.3 allows it, but Python's
// policy.default then shows the value with a leading space) or a part tree
// the two readers see differently fails it.

// readerMultiparts are the multipart types mailrun builds a message from:
// mixed for attachments, related for inline images, alternative for the
// text and HTML bodies (RFC 2046 section 5.1, RFC 2387).
var readerMultiparts = []string{"multipart/mixed", "multipart/related", "multipart/alternative"}

// Bounds of the Go reader, far beyond what an example holds.
const (
	readerMaxDepth = 8
	readerMaxParts = 64
)

// readerView is what a reader makes of one message: the part tree, its
// decoded Subject, From and To, and the complaints of the reader.
type readerView struct {
	File    string      `json:"file"`
	Error   string      `json:"error"`
	Tree    string      `json:"tree"`
	Subject *string     `json:"subject"`
	From    [][2]string `json:"from"`
	To      [][2]string `json:"to"`
	// Counts holds how often Subject, From and To occur in the header.
	Counts map[string]int `json:"counts"`
	// Leading lists the header fields, of the message and its parts,
	// whose value starts with a space or a tab.
	Leading []string `json:"leading"`
	// Defects lists what the reader found wrong (Python's defects).
	Defects []string `json:"defects"`
}

// pythonReader is the Python half: it reads each message named on the
// command line with email.policy.default and prints a JSON list of
// readerView. It uses the standard library only.
const pythonReader = `
import email, email.policy, json, sys

def tree(p):
    if p.get_content_maintype() == "multipart":
        return p.get_content_type() + "(" + ",".join(tree(c) for c in p.get_payload()) + ")"
    return p.get_content_type()

def addresses(h):
    if h is None:
        return None
    return [[a.display_name, a.addr_spec] for a in h.addresses]

out = []
for path in sys.argv[1:]:
    v = {"file": path}
    try:
        with open(path, "rb") as f:
            m = email.message_from_binary_file(f, policy=email.policy.default)
        leading, defects = [], []
        for i, p in enumerate(m.walk()):
            defects += ["part %d: %r" % (i, d) for d in p.defects]
            for k, h in p.items():
                if str(h)[:1] in (" ", "\t"):
                    leading.append("part %d: %s: %r" % (i, k, str(h)))
                defects += ["part %d: %s: %r" % (i, k, d) for d in getattr(h, "defects", ())]
        v.update(tree=tree(m), leading=leading, defects=defects,
                 subject=None if m["Subject"] is None else str(m["Subject"]),
                 counts={k: len(m.get_all(k, [])) for k in ("Subject", "From", "To")},
                 **{"from": addresses(m["From"]), "to": addresses(m["To"])})
    except Exception as e:
        v["error"] = "%s: %s" % (type(e).__name__, e)
    out.append(v)
json.dump(out, sys.stdout)
`

// TestReaders previews every example and reads each message with Go's
// reader (always) and Python's email package with policy.default (when
// python3 is installed; CI fails without it): no header value may start
// with a space, Subject, From and To must decode alike in both, and both
// must see the same tree of multipart/mixed, related and alternative.
func TestReaders(t *testing.T) {
	t.Parallel()
	paths, err := filepath.Glob(filepath.Join("..", "..", "examples", "*", "campaign.yaml"))
	if err != nil || len(paths) < 3 {
		t.Fatalf("got examples %v, %v, want at least 3", paths, err)
	}
	python, pyErr := exec.LookPath("python3")
	for _, p := range paths {
		dir := filepath.Dir(p)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			mailrun(t, nil, "preview", dir, "-o", out).want(t, exitOK, "preview")
			files, err := filepath.Glob(filepath.Join(out, "*.eml"))
			if err != nil || len(files) == 0 {
				t.Fatalf("preview wrote %v, %v, want .eml files", files, err)
			}
			views := map[string]readerView{}
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				views[f] = goReader(t, f, data)
			}

			if pyErr != nil {
				if os.Getenv("CI") != "" {
					t.Fatalf("python3 is not installed (%v), and CI is set: the Python half of the readers test cannot be skipped there", pyErr)
				}
				t.Skipf("python3 is not installed (%v): the Go half ran, the Python half is skipped", pyErr)
			}
			for _, py := range pythonRead(t, python, files) {
				name := filepath.Base(py.File)
				g, ok := views[py.File]
				if !ok {
					t.Errorf("python3 read %s, which preview did not write", py.File)
					continue
				}
				delete(views, py.File)
				compareReaders(t, name, g, py)
			}
			for f := range views {
				t.Errorf("%s: python3 said nothing about it", filepath.Base(f))
			}
		})
	}
}

// compareReaders fails the test unless Python's view py of the message
// name is sound and agrees with Go's view g.
func compareReaders(t *testing.T, name string, g, py readerView) {
	t.Helper()
	if py.Error != "" {
		t.Errorf("%s: python: %s", name, py.Error)
		return
	}
	for _, l := range py.Leading {
		t.Errorf("%s: python: a header value starts with a space (folded right after the colon?): %s", name, l)
	}
	for _, d := range py.Defects {
		t.Errorf("%s: python: defect %s", name, d)
	}
	for _, h := range []string{"Subject", "From", "To"} {
		if py.Counts[h] != 1 {
			t.Errorf("%s: python: got %d %s fields, want 1", name, py.Counts[h], h)
		}
	}
	switch {
	case py.Subject == nil:
		t.Errorf("%s: python: no Subject", name)
	case strings.Contains(*py.Subject, "=?"):
		t.Errorf("%s: python: Subject %q is still encoded", name, *py.Subject)
	case g.Subject != nil && *py.Subject != *g.Subject:
		t.Errorf("%s: Subject: python reads %q, Go reads %q", name, *py.Subject, *g.Subject)
	}
	for _, f := range []struct {
		field     string
		py, goRef [][2]string
	}{{"From", py.From, g.From}, {"To", py.To, g.To}} {
		if len(f.py) == 0 {
			t.Errorf("%s: python: %s holds no address", name, f.field)
		}
		if !slices.Equal(f.py, f.goRef) {
			t.Errorf("%s: %s: python reads %q, Go reads %q", name, f.field, f.py, f.goRef)
		}
	}
	if py.Tree != g.Tree {
		t.Errorf("%s: part tree: python reads %s, Go's mime/multipart reads %s", name, py.Tree, g.Tree)
	}
}

// pythonRead runs pythonReader once over files and returns its views.
func pythonRead(t *testing.T, python string, files []string) []readerView {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// -I: no user site-packages or PYTHON* variables, only the standard
	// library as installed.
	cmd := exec.CommandContext(ctx, python, append([]string{"-I", "-c", pythonReader}, files...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("python3: %v\n%s", err, stderr.String())
	}
	var views []readerView
	if err := json.Unmarshal(stdout.Bytes(), &views); err != nil {
		t.Fatalf("python3 output: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if len(views) != len(files) {
		t.Fatalf("python3 read %d messages, want %d", len(views), len(files))
	}
	return views
}

// goReader reads the message data (file) with net/mail and mime/multipart
// and fails the test unless every header field, of the message and of its
// parts, starts its value on its first line, Subject, From and To decode,
// and every multipart in the tree is one of readerMultiparts, the root
// included.
func goReader(t *testing.T, file string, data []byte) readerView {
	t.Helper()
	name := filepath.Base(file)
	v := readerView{File: file, Counts: map[string]int{}}
	for _, p := range emptyFirstLines(data, "message", 0) {
		t.Errorf("%s: %s", name, p)
	}
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for _, h := range []string{"Subject", "From", "To"} {
		if v.Counts[h] = len(m.Header[h]); v.Counts[h] != 1 {
			t.Errorf("%s: got %d %s fields, want 1", name, v.Counts[h], h)
		}
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil || subject == "" || strings.Contains(subject, "=?") {
		t.Errorf("%s: got Subject %q, %v, want it decoded", name, subject, err)
	} else {
		v.Subject = &subject
	}
	for _, f := range []struct {
		field string
		to    *[][2]string
	}{{"From", &v.From}, {"To", &v.To}} {
		list, err := m.Header.AddressList(f.field)
		if err != nil || len(list) == 0 {
			t.Errorf("%s: %s %q: got %d addresses, %v, want some", name, f.field, m.Header.Get(f.field), len(list), err)
		}
		for _, a := range list {
			*f.to = append(*f.to, [2]string{a.Name, a.Address})
		}
	}
	v.Tree, err = partTree(m.Header.Get, m.Body, 0)
	if err != nil {
		t.Fatalf("%s: mime/multipart: %v", name, err)
	}
	if root, _, _ := strings.Cut(v.Tree, "("); !slices.Contains(readerMultiparts, root) {
		t.Errorf("%s: the message is %s, want one of %v", name, root, readerMultiparts)
	}
	return v
}

// partTree returns the content type of the part whose header get reads and
// whose body is body, with its subparts in parentheses when it is a
// multipart: "multipart/mixed(multipart/alternative(text/plain,text/html),
// application/pdf)". A part without Content-Type is text/plain (RFC 2045
// section 5.2). Every multipart must be one of readerMultiparts.
func partTree(get func(string) string, body io.Reader, depth int) (string, error) {
	ct, params := "text/plain", map[string]string{}
	if h := get("Content-Type"); h != "" {
		var err error
		if ct, params, err = mime.ParseMediaType(h); err != nil {
			return "", fmt.Errorf("Content-Type %q: %w", h, err)
		}
	}
	if !strings.HasPrefix(ct, "multipart/") {
		return ct, nil
	}
	if !slices.Contains(readerMultiparts, ct) {
		return "", fmt.Errorf("got %s, want one of %v", ct, readerMultiparts)
	}
	if depth >= readerMaxDepth {
		return "", fmt.Errorf("multiparts nested deeper than %d", readerMaxDepth)
	}
	if params["boundary"] == "" {
		return "", fmt.Errorf("%s without a boundary", ct)
	}
	r := multipart.NewReader(body, params["boundary"])
	var kids []string
	for range readerMaxParts {
		p, err := r.NextRawPart()
		if errors.Is(err, io.EOF) {
			return ct + "(" + strings.Join(kids, ",") + ")", nil
		}
		if err != nil {
			return "", fmt.Errorf("%s: %w", ct, err)
		}
		kid, err := partTree(p.Header.Get, p, depth+1)
		if err != nil {
			return "", err
		}
		kids = append(kids, kid)
	}
	return "", fmt.Errorf("%s with more than %d parts", ct, readerMaxParts)
}

// emptyFirstLines returns a problem for every header field, in data (a
// message or a MIME part, CRLF line ends) and in its parts, whose first
// line holds nothing after the colon: "Subject:" with the whole value on
// continuation lines, which Python's policy.default shows with a leading
// space. It splits the raw bytes itself, because net/mail and
// mime/multipart trim the space and so hide the fold. where names data in
// the problems.
func emptyFirstLines(data []byte, where string, depth int) []string {
	if depth > readerMaxDepth {
		return []string{where + ": nested too deep"}
	}
	var head, body string
	if s := string(data); strings.HasPrefix(s, "\r\n") {
		body = s[2:] // a part without header fields
	} else {
		var ok bool
		if head, body, ok = strings.Cut(s, "\r\n\r\n"); !ok {
			return []string{where + ": no empty line after the header"}
		}
	}
	var problems []string
	for _, line := range strings.Split(head, "\r\n") {
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: header line %q is not a field", where, line))
		case strings.Trim(value, " \t") == "":
			problems = append(problems, fmt.Sprintf("%s: %s: the first line holds no value (folded right after the colon)", where, name))
		}
	}
	h, err := textproto.NewReader(bufio.NewReader(strings.NewReader(head + "\r\n\r\n"))).ReadMIMEHeader()
	if err != nil {
		return append(problems, fmt.Sprintf("%s: header: %v", where, err))
	}
	ct, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(ct, "multipart/") || params["boundary"] == "" {
		return problems // not a multipart; partTree judges the type
	}
	// RFC 2046 section 5.1.1: the CRLF before a delimiter belongs to it.
	parts := strings.Split("\r\n"+body, "\r\n--"+params["boundary"])
	for i, p := range parts[1:min(len(parts), readerMaxParts+1)] {
		if strings.HasPrefix(p, "--") {
			break // the close delimiter
		}
		// The rest of the delimiter line is transport padding.
		_, part, ok := strings.Cut(p, "\r\n")
		if !ok {
			return append(problems, fmt.Sprintf("%s: part %d: no line end after the delimiter", where, i+1))
		}
		problems = append(problems, emptyFirstLines([]byte(part), fmt.Sprintf("%s part %d", where, i+1), depth+1)...)
	}
	return problems
}
