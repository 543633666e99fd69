package serve

import (
	"bufio"
	"context"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPages: the index lists every row with a link to its page; a page
// has the message in its sandboxed frame, its neighbours, its inline image
// and its .eml; a pick by address leads to its row.
func TestPages(t *testing.T) {
	_, base := start(t)
	status, body := get(t, base)
	if status != 200 || !strings.Contains(body, `href="/row/6"`) || !strings.Contains(body, "5 rows.") {
		t.Fatalf("index: got %d\n%s", status, body)
	}
	status, body = get(t, base+"row/3")
	problems, srcdoc := page(t, body)
	if status != 200 || problems != "" || !strings.Contains(srcdoc, "Hello Jürgen!") {
		t.Fatalf("row 3: got %d, problems %q, frame %q", status, problems, srcdoc)
	}
	for _, want := range []string{`href="/row/2" rel="prev"`, `href="/row/4" rel="next"`, `href="/row/3/eml" download`, `<iframe sandbox="allow-same-origin" title`} {
		if !strings.Contains(body, want) {
			t.Errorf("row 3: want %q in\n%s", want, body)
		}
	}
	if !strings.Contains(srcdoc, `src="/row/3/part/0"`) {
		t.Errorf("row 3: want the logo as /row/3/part/0 in the frame:\n%s", srcdoc)
	}
	resp, err := http.Get(base + "row/3/part/0")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
		t.Errorf("part: got %d %q, want 200 image/png", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp, err = http.Get(base + "row/3/eml")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cd := resp.Header.Get("Content-Disposition"); resp.StatusCode != 200 || cd != `attachment; filename="00003-juergen@example.net.eml"` {
		t.Errorf("eml: got %d %q", resp.StatusCode, cd)
	}
	// http.Get follows the redirect of the picker.
	resp, err = http.Get(base + "pick?r=LILEI@example.com")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/row/4" {
		t.Errorf("pick by address: got %s, want /row/4", resp.Request.URL.Path)
	}
	status, body = get(t, base+"pick?r=nobody@example.org")
	if problems, _ := page(t, body); status != 404 || !strings.Contains(problems, `"nobody@example.org"`) {
		t.Errorf("pick of nobody: got %d %q", status, problems)
	}
}

// TestProblemInPage: a template that does not parse is shown with its
// file:line where the message was, on the page and the index; fixing it
// brings the message back.
func TestProblemInPage(t *testing.T) {
	dir, base := start(t)
	editFile(t, dir, "body.md", func(s string) string { return strings.Replace(s, "{{.first_name}}!", "{{.first_name!", 1) })
	var problems, srcdoc string
	eventually(t, 3*time.Second, "the broken template shown", func() bool {
		_, body := get(t, base+"row/2")
		problems, srcdoc = page(t, body)
		return problems != ""
	})
	if !strings.Contains(problems, "body.md:3: bad character") || srcdoc != "" {
		t.Errorf("got problems %q and frame %q, want body.md:3 and no message", problems, srcdoc)
	}
	if _, body := get(t, base); !strings.Contains(body, "body.md:3: bad character") {
		t.Errorf("index: want the problem in\n%s", body)
	}
	editFile(t, dir, "body.md", func(s string) string { return strings.Replace(s, "{{.first_name!", "{{.first_name}}!", 1) })
	eventually(t, 3*time.Second, "the message back", func() bool {
		_, body := get(t, base+"row/2")
		problems, srcdoc = page(t, body)
		return problems == "" && strings.Contains(srcdoc, "Hello Zoë!")
	})
}

// TestUnreadableCampaign: the server starts on a folder whose campaign
// file is broken, shows why, and serves the campaign once it is fixed.
func TestUnreadableCampaign(t *testing.T) {
	dir, base := start(t)
	editFile(t, dir, "campaign.yaml", func(s string) string { return "subjekt: x\n" + s })
	eventually(t, 3*time.Second, "the campaign file's problem shown", func() bool {
		_, body := get(t, base+"row/2")
		problems, _ := page(t, body)
		return strings.Contains(problems, "campaign.yaml:1: ") && strings.Contains(problems, "subjekt")
	})
	editFile(t, dir, "campaign.yaml", func(s string) string { return strings.TrimPrefix(s, "subjekt: x\n") })
	eventually(t, 3*time.Second, "the message back", func() bool {
		_, body := get(t, base+"row/2")
		_, srcdoc := page(t, body)
		return strings.Contains(srcdoc, "Hello Zoë!")
	})
}

// TestEventsOnRenameWrite: a page's event stream gets "reload" when a file
// is replaced by rename, as many editors save, and at once when the page
// shows an older version than the server's.
func TestEventsOnRenameWrite(t *testing.T) {
	dir, base := start(t)
	lines := events(t, base)
	quiet := time.After(300 * time.Millisecond) // two settle times: nothing pending
	for waiting := true; waiting; {
		select {
		case l := <-lines:
			if l != "" {
				t.Fatalf("got %q before any change, want nothing", l)
			}
		case <-quiet:
			waiting = false
		}
	}
	start := time.Now()
	editFile(t, dir, "body.md", func(s string) string { return s + "\nP.S. renamed\n" })
	waitEvent(t, lines, 3*time.Second, "event: reload")
	t.Logf("reload event %s after the rename", time.Since(start).Round(time.Millisecond))

	// A page of the first version, opened now, is told at once it is old.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req2, _ := http.NewRequestWithContext(ctx, "GET", base+"events?v=1", nil)
	resp2, err := http.DefaultClient.Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	sc := bufio.NewScanner(resp2.Body)
	for sc.Scan() && sc.Text() != "event: reload" {
	}
	if sc.Text() != "event: reload" {
		t.Errorf("stale page: got no reload (%v)", sc.Err())
	}
}

// events opens the event stream of a page showing the current version,
// for 10 seconds at most, and returns its lines once the stream began.
func events(t *testing.T, base string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"events?v="+version(t, base), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("got Content-Type %q", ct)
	}
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	waitEvent(t, lines, 3*time.Second, "retry: 1000")
	return lines
}

// version is the version of the files the index shows (data-version).
func version(t *testing.T, base string) string {
	t.Helper()
	_, body := get(t, base)
	_, rest, ok := strings.Cut(body, `data-version="`)
	v, _, _ := strings.Cut(rest, `"`)
	if !ok || v == "" {
		t.Fatalf("no data-version in the index:\n%s", body)
	}
	return v
}

func waitEvent(t *testing.T, lines <-chan string, limit time.Duration, want string) {
	t.Helper()
	deadline := time.After(limit)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stream ended before %q", want)
			}
			if l == want {
				return
			}
		case <-deadline:
			t.Fatalf("no %q within %s", want, limit)
		}
	}
}

// TestRefused: no URL reaches a file by its path, and a request for
// another host name (DNS rebinding) is refused.
func TestRefused(t *testing.T) {
	_, base := start(t)
	host := strings.TrimSuffix(strings.TrimPrefix(base, "http://"), "/")
	for _, path := range []string{"/parts/../../etc/passwd", "/row/2/part/..%2f..%2f..%2fetc%2fpasswd",
		"/row/..%2f..%2fetc%2fpasswd/eml", "/row/-1", "/row/02", "/row/2/part/7", "/row/2/part/-1",
		"/campaign.yaml", "/recipients.csv", "/row/99/eml"} {
		// A raw request, so that the client cleans nothing.
		status, body := raw(t, host, "GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
		if status == 200 || strings.Contains(body, "root:") || strings.Contains(body, "zoe@example.org") {
			t.Errorf("%s: got %d\n%s", path, status, body)
		}
	}
	if status, _ := raw(t, host, "GET / HTTP/1.1\r\nHost: attacker.example:80\r\nConnection: close\r\n\r\n"); status != 403 {
		t.Errorf("foreign Host: got %d, want 403", status)
	}
	if status, _ := raw(t, host, "GET / HTTP/1.1\r\nHost: localhost:"+host[strings.LastIndex(host, ":")+1:]+"\r\nConnection: close\r\n\r\n"); status != 200 {
		t.Errorf("Host localhost: got %d, want 200", status)
	}
}

// raw sends one HTTP request as written and returns the status and body.
func raw(t *testing.T, addr, req string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprint(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
	return resp.StatusCode, b.String()
}

// TestListenLoopback: the default address, and an address without a host,
// listen on loopback only.
func TestListenLoopback(t *testing.T) {
	_, port, _ := net.SplitHostPort(DefaultAddr)
	if host, _, _ := net.SplitHostPort(DefaultAddr); host != "127.0.0.1" || port == "0" {
		t.Errorf("DefaultAddr %q: want 127.0.0.1 and a fixed port", DefaultAddr)
	}
	for _, addr := range []string{":0", "127.0.0.1:0", "localhost:0", "[::1]:0"} {
		ln, public, err := Listen(addr)
		if err != nil {
			if addr == "[::1]:0" {
				continue // no IPv6 here
			}
			t.Fatal(err)
		}
		ip := ln.Addr().(*net.TCPAddr).IP
		ln.Close()
		if public || !ip.IsLoopback() {
			t.Errorf("Listen(%q): got %s (public %v), want loopback", addr, ip, public)
		}
	}
	if _, _, err := Listen("8088"); err == nil {
		t.Error("Listen(\"8088\"): want an error for an address without a colon")
	}
}

// TestShutdown: Server.Run returns soon after its context ends although a page
// is following the events, and leaves no goroutine behind.
func TestShutdown(t *testing.T) {
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	writeByRename(t, dir, "campaign.yaml", "from: a@b.example\n") // a broken campaign serves too
	ln, _, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	s, err := New(dir, &syncBuffer{})
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- s.Run(ctx, ln) }()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(URL(ln.Addr()) + "events?v=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = bufio.NewReader(resp.Body).ReadString('\n')
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s")
	}
	t.Logf("Run returned %s after the cancel", time.Since(start).Round(time.Millisecond))
	resp.Body.Close()
	client.CloseIdleConnections()
	eventually(t, 5*time.Second, "goroutines back to "+strconv.Itoa(before), func() bool {
		return runtime.NumGoroutine() <= before
	})
}

// TestNoWire: serve does not import the wire: it cannot send.
func TestNoWire(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range af.Imports {
			if p, _ := strconv.Unquote(im.Path.Value); strings.HasSuffix(p, "/sender") || p == "net/smtp" {
				t.Errorf("%s imports %s", f, p)
			}
		}
	}
}

// TestEventsInNewFolder: a folder made after the start is watched too (a
// layout or images moved into a subfolder).
func TestEventsInNewFolder(t *testing.T) {
	dir, base := start(t)
	lines := events(t, base)
	sub := filepath.Join(dir, "images")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, lines, 3*time.Second, "event: reload") // the new folder itself
	writeByRename(t, sub, "logo.png", "not yet a png")
	waitEvent(t, lines, 3*time.Second, "event: reload")
}

// TestEventsWhileAFileKeepsChanging: a file written every 100 ms, quicker
// than the settle time, still gets the open pages reloaded within about a
// second of the first change (maxSettle), not only once it stops.
func TestEventsWhileAFileKeepsChanging(t *testing.T) {
	dir, base := start(t)
	lines := events(t, base)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // a log file some tool keeps writing in the folder
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for i := 0; i < 100; i++ {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = os.WriteFile(filepath.Join(dir, "notes.txt"), []byte(fmt.Sprint(i)), 0o644)
			}
		}
	}()
	defer func() { close(stop); <-done }()
	waitEvent(t, lines, 4*time.Second, "event: reload")
}

// TestEventsTooManyPages: past maxStreams open pages, a page's event
// stream ends at once with a long retry instead of an error, which would
// end its EventSource for good; once a page closes, it gets in.
func TestEventsTooManyPages(t *testing.T) {
	_, base := start(t)
	v := version(t, base)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	open := func() (*http.Response, *bufio.Reader) {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"events?v="+v, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "retry: ") {
			t.Fatalf("first line %q, %v", l, err)
		}
		return resp, br
	}
	var held []*http.Response
	for range maxStreams {
		resp, _ := open()
		held = append(held, resp)
	}
	resp, br := open()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("page %d: status %d, want 200", maxStreams+1, resp.StatusCode)
	}
	if _, err := io.ReadAll(br); err != nil {
		t.Fatalf("page %d: the stream should end at once: %v", maxStreams+1, err)
	}
	resp.Body.Close()
	for _, r := range held {
		r.Body.Close()
	}
}
