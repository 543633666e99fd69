package serve

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/gallery"
	"github.com/mailrun/mailrun/mailing"
)

const (
	// maxListed bounds the rows the index lists; the others are counted
	// and reached through the picker, so a long list costs no memory.
	maxListed = 2000
	// renderTimeout bounds the rendering behind one request.
	renderTimeout = 2 * time.Minute
	// cached is the number of rendered messages kept for their parts and
	// .eml: a page and its images render the message once.
	cached = 16
)

// Server serves the gallery of one campaign, rendered on request from the
// files as they are now. Its zero value is not usable: New makes one.
type Server struct {
	path string    // the campaign as the user named it
	dir  string    // its folder, which holds every file it uses
	log  io.Writer // where reloads and watch errors are reported

	mu      sync.Mutex
	version uint64             // bumped by every reload
	c       *campaign.Campaign // nil when the campaign cannot be read
	loadErr error              // why c is nil, or its problems
	msgs    []*message         // the latest rendered messages, newest last

	indexMu sync.Mutex // one index walk at a time
	index   *indexPage // the index of index.version, or nil

	hub    hub
	routes http.Handler
	// hosts are the Host header values requests may carry; nil allows
	// any (a server the user opened to the network).
	hosts map[string]bool
}

// message is one rendered row, parsed for its page, parts and .eml.
type message struct {
	version uint64
	row     int
	r       *mailing.Rendered
	m       *gallery.Message // nil without a message
}

type indexPage struct {
	version uint64
	x       gallery.Index
}

// newServer makes the server of the campaign at path (in folder dir); Run
// loads the campaign.
func newServer(path, dir string, log io.Writer) *Server {
	// Versions start at a random point: a page left open from an earlier
	// run of serve must not match this one's version by chance and miss
	// its reload.
	s := &Server{path: path, dir: dir, log: log, version: uint64(rand.Uint32()) << 16}
	s.routes = s.mux()
	return s
}

// load reads the campaign again, as check does: a campaign with problems
// is kept (they show in the pages), an unreadable one is replaced by its
// error. Every page open is told to reload.
func (s *Server) load() {
	c, err := campaign.Load(s.path)
	var ps campaign.Problems
	if err != nil && c != nil && !errors.As(err, &ps) {
		c = nil
	}
	s.mu.Lock()
	s.version++
	s.c, s.loadErr, s.msgs = c, err, nil
	v := s.version
	s.mu.Unlock()
	s.hub.broadcast(v)
}

// snapshot is the campaign of the current version.
func (s *Server) snapshot() (uint64, *campaign.Campaign, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version, s.c, s.loadErr
}

// routes are the server's URLs. Rows are numbers, never paths.
func (s *Server) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.serveIndex)
	mux.HandleFunc("GET /pick", s.servePick)
	mux.HandleFunc("GET /row/{row}", s.servePage)
	mux.HandleFunc("GET /row/{row}/part/{n}", s.servePart)
	mux.HandleFunc("GET /row/{row}/eml", s.serveEML)
	mux.HandleFunc("GET /events", s.serveEvents)
	mux.HandleFunc("GET /live.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, liveJS)
	})
	return mux
}

// liveJS is the pages' one script: it connects to /events with the
// version the page shows and reloads the page when the files change.
const liveJS = `// mailrun serve: reload this page when the campaign's files change.
"use strict";
(function () {
	var v = document.documentElement.getAttribute("data-version") || "";
	// A browser keeps six connections per host: a hidden tab lets its
	// stream go, so that many open tabs do not stop pages loading.
	var es = null;
	function open() {
		if (es) { return; }
		es = new EventSource("/events?v=" + encodeURIComponent(v));
		es.addEventListener("reload", function () { es.close(); location.reload(); });
	}
	function close() {
		if (es) { es.close(); es = null; }
	}
	document.addEventListener("visibilitychange", function () {
		if (document.hidden) { close(); } else { open(); }
	});
	if (!document.hidden) { open(); }
})();
`

// ServeHTTP refuses a request for another host (DNS rebinding), then
// answers it; every answer is fresh (no-store).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.hosts != nil && !s.hosts[strings.ToLower(r.Host)] {
		http.Error(w, "mailrun serve: wrong Host header "+strconv.Quote(r.Host), http.StatusForbidden)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	s.routes.ServeHTTP(w, r)
}

// live is what the served pages add to the files' pages.
func live(v uint64, picked string) *gallery.Live {
	return &gallery.Live{Script: "/live.js", Version: v, Pick: "/pick", Picked: picked}
}

func rowURL(row int) string { return "/row/" + strconv.Itoa(row) }

func writeHTML(w http.ResponseWriter, status int, fill func(io.Writer) error) {
	var b bytes.Buffer
	if err := fill(&b); err != nil {
		http.Error(w, "mailrun serve: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// lines splits an error of campaign.Load (Problems print one a line).
func lines(err error) []string {
	return strings.Split(strings.TrimRight(err.Error(), "\n"), "\n")
}

func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	v, c, loadErr := s.snapshot()
	var x gallery.Index
	if c == nil {
		x.Notes = lines(loadErr)
	} else {
		var err error
		if x, err = s.indexOf(r.Context(), v, c); err != nil {
			x = gallery.Index{Notes: []string{err.Error()}}
		}
	}
	x.Live = live(v, "")
	writeHTML(w, http.StatusOK, func(b io.Writer) error { return gallery.WriteIndex(b, x) })
}

// indexOf walks the campaign for its index once per version.
func (s *Server) indexOf(ctx context.Context, v uint64, c *campaign.Campaign) (gallery.Index, error) {
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	if s.index != nil && s.index.version == v {
		return s.index.x, nil
	}
	ctx, cancel := context.WithTimeout(ctx, renderTimeout)
	defer cancel()
	g := gallery.Collect(maxListed)
	rep, err := mailing.Index(ctx, c, g)
	if err != nil {
		return gallery.Index{}, err
	}
	x := g.Index()
	// Rows without a message or a problem of their own (a template that
	// does not parse fails them all) are not in the index but are rows.
	x.Count = max(x.Count, rep.Recipients)
	for i := range x.Entries {
		x.Entries[i].Page = rowURL(x.Entries[i].Row)
	}
	s.index = &indexPage{version: v, x: x}
	return x, nil
}

// servePick finds the row that r names (a row number or an address) and
// sends the browser to its page.
func (s *Server) servePick(w http.ResponseWriter, r *http.Request) {
	pick := strings.TrimSpace(r.URL.Query().Get("r"))
	m, status, err := s.render(r.Context(), pick)
	if err != nil {
		s.problemPage(w, r, status, 0, pick, []string{err.Error()})
		return
	}
	http.Redirect(w, r, rowURL(m.r.Row), http.StatusSeeOther)
}

// row reads the {row} of a URL: a number, nothing else.
func row(r *http.Request) (int, bool) {
	n, err := strconv.Atoi(r.PathValue("row"))
	return n, err == nil && n >= 0 && strconv.Itoa(n) == r.PathValue("row")
}

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	n, ok := row(r)
	if !ok {
		http.NotFound(w, r)
		return
	}
	m, status, err := s.render(r.Context(), strconv.Itoa(n))
	if err != nil {
		s.problemPage(w, r, status, n, strconv.Itoa(n), []string{err.Error()})
		return
	}
	e := gallery.Entry{Row: m.r.Row, Address: m.r.Email}
	if m.m != nil {
		e = m.m.Entry(m.r.Row, m.r.Name)
		e.Address = m.r.Email
	}
	for _, p := range m.r.Problems {
		e.Problems = append(e.Problems, p.String())
	}
	links := gallery.Links{Index: "/", Live: live(m.version, strconv.Itoa(n))}
	if m.r.Prev > 0 {
		links.Prev = rowURL(m.r.Prev)
	}
	if m.r.Next > 0 {
		links.Next = rowURL(m.r.Next)
	}
	if m.m != nil {
		links.EML = rowURL(m.r.Row) + "/eml"
		links.Part = func(i int, _ gallery.Part) string { return rowURL(m.r.Row) + "/part/" + strconv.Itoa(i) }
	}
	writeHTML(w, http.StatusOK, func(b io.Writer) error { return gallery.WritePage(b, e, m.m, links) })
}

// problemPage is a page without a message: what went wrong stands in its
// place.
func (s *Server) problemPage(w http.ResponseWriter, r *http.Request, status, n int, picked string, problems []string) {
	v, _, _ := s.snapshot()
	e := gallery.Entry{Row: n, Problems: problems}
	writeHTML(w, status, func(b io.Writer) error {
		return gallery.WritePage(b, e, nil, gallery.Links{Index: "/", Live: live(v, picked)})
	})
}

func (s *Server) servePart(w http.ResponseWriter, r *http.Request) {
	n, ok := row(r)
	i, err := strconv.Atoi(r.PathValue("n"))
	if !ok || err != nil {
		http.NotFound(w, r)
		return
	}
	m, _, err := s.render(r.Context(), strconv.Itoa(n))
	if err != nil || m.m == nil || i < 0 || i >= len(m.m.Inline) {
		http.NotFound(w, r)
		return
	}
	pt := m.m.Inline[i]
	ctype := "application/octet-stream"
	if _, ok := gallery.ImageType(pt.Type); ok {
		ctype = pt.Type
	}
	w.Header().Set("Content-Type", ctype)
	// Whatever it is, it runs nothing and loads nothing.
	w.Header().Set("Content-Security-Policy", "sandbox; default-src 'none'")
	_, _ = w.Write(pt.Data)
}

func (s *Server) serveEML(w http.ResponseWriter, r *http.Request) {
	n, ok := row(r)
	if !ok {
		http.NotFound(w, r)
		return
	}
	m, _, err := s.render(r.Context(), strconv.Itoa(n))
	if err != nil || m.r.Data == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "message/rfc822")
	w.Header().Set("Content-Security-Policy", "sandbox; default-src 'none'")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": m.r.Name}))
	_, _ = w.Write(m.r.Data)
}

// render renders the row pick names from the current files, or returns
// the one rendered last for this version. The status goes with the error:
// 404 for a pick that matches no row, 500 for a list that cannot be read.
func (s *Server) render(ctx context.Context, pick string) (*message, int, error) {
	v, c, loadErr := s.snapshot()
	if c == nil {
		return nil, http.StatusOK, loadErr
	}
	s.mu.Lock()
	for _, m := range s.msgs {
		if m.version == v && (strconv.Itoa(m.row) == pick || pick != "" && campaign.AddrKey(pick) == campaign.AddrKey(m.r.Email)) {
			s.mu.Unlock()
			return m, 0, nil
		}
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, renderTimeout)
	defer cancel()
	r, err := mailing.RenderOne(ctx, c, pick)
	switch {
	case errors.Is(err, mailing.ErrNoRecipient):
		return nil, http.StatusNotFound, err
	case err != nil:
		return nil, http.StatusInternalServerError, err
	}
	m := &message{version: v, row: r.Row, r: r}
	if r.Data != nil {
		if m.m, err = gallery.Parse(r.Data); err != nil {
			return nil, http.StatusInternalServerError, err
		}
	}
	s.mu.Lock()
	if s.version == v {
		if len(s.msgs) >= cached {
			s.msgs = s.msgs[1:]
		}
		s.msgs = append(s.msgs, m)
	}
	s.mu.Unlock()
	return m, 0, nil
}

// allowHosts limits the Host header to the names of a loopback listener:
// its address, and localhost with its port.
func (s *Server) allowHosts(addr net.Addr) {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return
	}
	port := strconv.Itoa(tcp.Port)
	s.hosts = map[string]bool{strings.ToLower(tcp.String()): true, "localhost:" + port: true}
	if tcp.IP.To4() != nil {
		s.hosts[net.JoinHostPort(tcp.IP.String(), port)] = true
	}
	for _, h := range []string{"127.0.0.1", "::1"} {
		s.hosts[net.JoinHostPort(h, port)] = true
	}
}

// URL is the address users open for a listener.
func URL(addr net.Addr) string {
	return (&url.URL{Scheme: "http", Host: addr.String(), Path: "/"}).String()
}

// campaignDir is the folder holding the campaign at path (a file or a
// folder, as campaign.Load takes it); the files of a campaign never leave
// it. The error is a path that does not exist.
func campaignDir(path string) (string, error) {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return "", err
	case fi.IsDir():
		return path, nil
	}
	return filepath.Dir(path), nil
}
