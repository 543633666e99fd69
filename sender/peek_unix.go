//go:build unix && !aix

package sender

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// peekStale reports whether the server closed the connection, reset it or
// sent something unasked since the last reply was read, without waiting
// and without consuming anything: a non-blocking MSG_PEEK of one byte
// sees a FIN (0 bytes), a reset (an error) or a byte. It is the check a
// chunked group makes before it writes the message: a connection found
// dead here costs a redial, while one found dead after the write leaves
// the message Unknown. ok is false when c is not a socket it can peek.
//
// A read deadline that passed while the connection sat idle (the last
// reply's) would fail the peek as if the socket were closed, so it is
// cleared and the peek made again: the caller sets its own deadline before
// its next read. (aix has no MSG_DONTWAIT in package syscall.)
func peekStale(c net.Conn) (stale, ok bool) {
	sc, isSC := c.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !isSC {
		return false, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false, false
	}
	var perr error
	peek := func(fd uintptr) bool {
		var b [1]byte
		_, _, perr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait for the socket to become readable
	}
	err = rc.Read(peek)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if c.SetReadDeadline(time.Time{}) != nil {
			return false, false
		}
		err = rc.Read(peek)
	}
	if err != nil {
		return true, true // the socket is closed
	}
	switch {
	case errors.Is(perr, syscall.EAGAIN) || errors.Is(perr, syscall.EWOULDBLOCK):
		return false, true // nothing to read: as alive as can be told
	case errors.Is(perr, syscall.EINTR):
		return false, false
	case perr != nil:
		return true, true // reset
	}
	return true, true // 0 bytes is a FIN; 1 a byte nobody asked for
}
