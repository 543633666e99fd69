package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/mailrun/mailrun/mailing"
)

// DefaultAddr is where mailrun serve listens unless told otherwise: this
// machine only.
const DefaultAddr = "127.0.0.1:8088"

// shutdownTimeout bounds the wait for requests in flight at the end.
const shutdownTimeout = 5 * time.Second

// Listen opens a TCP listener on addr ("host:port"; port 0 picks a free
// one). An address without a host (":8088") is on 127.0.0.1, so that only
// a host the caller writes out opens the server to others. public reports
// whether it listens on anything but loopback (mailing.IsLoopback): anyone
// who reaches it then reads the recipients' data. The error is net's.
func Listen(addr string) (ln net.Listener, public bool, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, false, fmt.Errorf("listen %q: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	ln, err = net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, false, err
	}
	tcp, ok := ln.Addr().(*net.TCPAddr)
	return ln, !ok || !mailing.IsLoopback(tcp.IP.String()), nil
}

// New makes the server of the campaign at path (a campaign file or its
// folder); Run loads the campaign once it watches its folder. The campaign
// need not be valid, nor even readable: its problems are shown in the
// pages until the files are fixed. Reloads and watch errors are reported
// to log. The error is a path that does not exist.
func New(path string, log io.Writer) (*Server, error) {
	dir, err := campaignDir(path)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	return newServer(path, dir, log), nil
}

// Run serves on ln until ctx ends, then closes ln, the open event streams
// and the watcher, and returns after every goroutine it started has ended.
// The error is one that stops the server: a campaign folder that cannot be
// watched, or the listener failing; nil when ctx ended it.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		ln.Close()
		return fmt.Errorf("serve: watch: %w", err)
	}
	defer w.Close()
	dirs, err := watchDirs(w, s.dir, 0)
	if err != nil {
		ln.Close()
		return fmt.Errorf("serve: watch %s: %w", s.dir, err)
	}
	if dirs >= maxDirs {
		fmt.Fprintf(s.log, "mailrun serve: watching the first %d folders under %s only\n", maxDirs, s.dir)
	}
	// Loaded once the folder is watched, so that no change is missed.
	s.load()
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && mailing.IsLoopback(tcp.IP.String()) {
		s.allowHosts(ln.Addr())
	}

	// Requests run under ctx: its end cancels the renders in flight and
	// ends the event streams, so that Shutdown does not wait for them.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		s.watch(ctx, w, dirs)
	}()

	select {
	case <-ctx.Done():
		err = nil
	case err = <-served:
		served <- err
	}
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer scancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		srv.Close()
	}
	if serr := <-served; err == nil && !errors.Is(serr, http.ErrServerClosed) {
		err = serr
	}
	<-watched
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
