package serve

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

const (
	// maxStreams bounds the pages that follow the files at once.
	maxStreams = 64
	// heartbeat keeps an idle stream open through proxies and finds a
	// page that went away.
	heartbeat = 20 * time.Second
	// maxStream ends a stream after a while; the page's EventSource
	// connects again at once, with its version, so nothing is missed.
	maxStream = 30 * time.Minute
)

// hub hands each new version to every open stream.
type hub struct {
	mu   sync.Mutex
	subs map[chan uint64]struct{}
}

// subscribe returns a channel that receives new versions, or nil when
// maxStreams are open.
func (h *hub) subscribe() chan uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) >= maxStreams {
		return nil
	}
	if h.subs == nil {
		h.subs = map[chan uint64]struct{}{}
	}
	ch := make(chan uint64, 1)
	h.subs[ch] = struct{}{}
	return ch
}

func (h *hub) unsubscribe(ch chan uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, ch)
}

// broadcast never blocks: a stream that has a version waiting gets the
// newer one instead.
func (h *hub) broadcast(v uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case <-ch:
		default:
		}
		ch <- v
	}
}

// serveEvents streams "reload" events (server-sent events, the HTML
// standard's EventSource) to a page that shows version v: at once if the
// files are already newer, then at each change. It ends with the request,
// the server or maxStream.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch := s.hub.subscribe()
	if ch == nil {
		// Too many pages open: an error would end the page's EventSource
		// for good; a stream that ends at once with a long retry has it
		// ask again later, when others may have closed.
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "retry: 10000\n\n")
		return
	}
	defer s.hub.unsubscribe(ch)
	w.Header().Set("Content-Type", "text/event-stream")
	// The page asks again a second after a stop (a server restarted).
	if _, err := fmt.Fprint(w, "retry: 1000\n\n"); err != nil {
		return
	}
	shown, _ := strconv.ParseUint(r.URL.Query().Get("v"), 10, 64)
	if v, _, _ := s.snapshot(); v != shown {
		fmt.Fprintf(w, "event: reload\ndata: %d\n\n", v)
	}
	fl.Flush()
	beat := time.NewTicker(heartbeat)
	defer beat.Stop()
	end := time.NewTimer(maxStream)
	defer end.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-end.C:
			return
		case v := <-ch:
			_, err = fmt.Fprintf(w, "event: reload\ndata: %d\n\n", v)
		case <-beat.C:
			_, err = fmt.Fprint(w, ": still here\n\n")
		}
		if err != nil {
			return
		}
		fl.Flush()
	}
}
