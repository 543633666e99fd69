package serve

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// start copies the newsletter example into a temporary folder, serves it
// in-process on 127.0.0.1:0 and returns the folder and the base URL (with
// its slash). The server is stopped in t.Cleanup, which fails the test if
// Run does not return within a few seconds or returns an error.
func start(t *testing.T) (dir, base string) {
	t.Helper()
	dir = t.TempDir()
	src := "../examples/newsletter"
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ln, public, err := Listen("127.0.0.1:0")
	if err != nil || public {
		t.Fatalf("Listen: %v (public %v)", err, public)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := &syncBuffer{}
	s, err := New(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- s.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of its context's end")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", log.String())
		}
	})
	return dir, URL(ln.Addr())
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// get fetches url and returns its status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// writeByRename replaces dir/name as editors that save by rename do: a
// new file beside it, renamed over the old one.
func writeByRename(t *testing.T, dir, name, data string) {
	t.Helper()
	tmp := filepath.Join(dir, name+".new")
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// editFile rewrites dir/name through fn, by rename.
func editFile(t *testing.T, dir, name string, fn func(string) string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	writeByRename(t, dir, name, fn(string(data)))
}

// page parses a served page and returns the text of its problems list
// and the srcdoc of its message frame ("" when there is none).
func page(t *testing.T, body string) (problems, srcdoc string) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		for _, a := range n.Attr {
			switch {
			case n.Data == "ul" && a.Key == "id" && a.Val == "problems":
				problems = text(n)
			case n.Data == "iframe" && a.Key == "srcdoc":
				srcdoc = a.Val
			}
		}
	}
	return problems, srcdoc
}

func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}

// eventually polls cond every 50 ms until it holds or limit passes: the
// limit is the promise to the user, not a guess of how long it takes.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
