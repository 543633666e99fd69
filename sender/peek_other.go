//go:build !unix || aix

package sender

import "net"

// peekStale cannot look at a socket without reading it here; the chunked
// path then relies on idleProbe alone (see peek_unix.go).
func peekStale(net.Conn) (stale, ok bool) { return false, false }
