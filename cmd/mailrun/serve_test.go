package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestServe runs mailrun serve in-process as a user would: it prints its
// URL on loopback, serves the gallery and a row's page from the example,
// and stops with exit 0 when interrupted (its context ends).
func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "../../examples/newsletter", "--listen", "127.0.0.1:0"}, strings.NewReader(""), &out, &errOut)
	}()
	url := regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+/`)
	deadline := time.Now().Add(10 * time.Second)
	for url.FindString(out.String()) == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no URL within 10s; stdout %q, stderr %q", out.String(), errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	base := url.FindString(out.String())
	for path, want := range map[string]string{"": `href="/row/2"`, "row/2": "Zoë, what&#39;s new at Acme in November"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("/%s: got %d, want %q in\n%s", path, resp.StatusCode, want, body)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK || !strings.Contains(out.String(), "serve: stopped") || errOut.String() != "" {
			t.Errorf("got exit %d, stdout %q, stderr %q; want 0 and stopped", code, out.String(), errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop within 10s of the interrupt")
	}
}

// TestServeUsage: a bad address and a missing folder are usage errors.
func TestServeUsage(t *testing.T) {
	r := mailrun(t, nil, "serve", "../../examples/newsletter", "--listen", "nohost")
	r.want(t, exitUsage, "serve --listen nohost")
	if !strings.Contains(r.stderr, "--listen 127.0.0.1:0") {
		t.Errorf("got stderr %q, want the way to pick an address", r.stderr)
	}
	r = mailrun(t, nil, "serve", t.TempDir()+"/missing", "--listen", "127.0.0.1:0")
	r.want(t, exitUsage, "serve of a missing folder")
	r = mailrun(t, nil, "help", "serve")
	r.want(t, exitOK, "help serve")
	if !strings.Contains(r.stdout, "Usage: mailrun serve CAMPAIGN") || !strings.Contains(r.stdout, "--listen HOST:PORT") {
		t.Errorf("help serve: got %q", r.stdout)
	}
}
