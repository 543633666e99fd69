package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/mailrun/mailrun/serve"
)

// cmdServe is mailrun serve: the live preview of a campaign while it is
// written. Ctrl-C is its normal end, so it exits 0 then.
func cmdServe(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", serve.DefaultAddr, "`HOST:PORT` to listen on; port 0 picks a free one; a host other than\nloopback shows the recipients' data to anyone who can reach it")
	pos, code, ok := parse(fs, args, 1, stdout, stderr)
	if !ok {
		return code
	}
	s, err := serve.New(pos[0], stderr)
	if err != nil {
		fmt.Fprintln(stderr, "mailrun", errText(err))
		return exitUsage
	}
	ln, public, err := serve.Listen(*listen)
	if err != nil {
		fmt.Fprintf(stderr, "mailrun serve: %v (pick another address with --listen 127.0.0.1:0)\n", errText(err))
		return exitUsage
	}
	if public {
		fmt.Fprintf(stderr, "mailrun serve: warning: listening on %s, not loopback: anyone who can reach it sees the recipients' data\n", ln.Addr())
	}
	fmt.Fprintf(stdout, "serve: %s at %s (nothing is sent; Ctrl-C stops)\n", pos[0], serve.URL(ln.Addr()))
	if err := s.Run(ctx, ln); err != nil {
		fmt.Fprintln(stderr, "mailrun", errText(err))
		return exitUsage
	}
	fmt.Fprintln(stdout, "serve: stopped")
	return exitOK
}
