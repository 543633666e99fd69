//go:build linux

package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// benchSink is a minimal SMTP server (RFC 5321 with PIPELINING, RFC 2920,
// and CHUNKING, RFC 3030) for TestBenchSendSink: it reads DATA a line at a
// time, BDAT chunks whole, and keeps only
// counts, so that on a 2-core machine the figure shows what mailrun can
// do rather than how fast the test server parses. go-smtp's server, used by
// TestBenchSend, reads DATA one byte at a time and takes most of the CPU.
type benchSink struct {
	ln    net.Listener
	delay time.Duration // before the reply to each message's end of data

	mu         sync.Mutex
	deliveries map[string]int
	messages   int
	conns, max int
	// first and last are when the first and the last message arrived:
	// the rate between them leaves out a sender's start and end (a
	// coordinator's poll for the last batch).
	first, last time.Time
}

func startBenchSink(t *testing.T) *benchSink {
	t.Helper()
	return startBenchSinkDelay(t, 0)
}

// startBenchSinkDelay is startBenchSink holding each message's final
// reply (after DATA's end, or BDAT LAST) for delay, as a real relay takes
// a while to queue a message: each connection then carries at most one
// message per delay.
func startBenchSinkDelay(t *testing.T, delay time.Duration) *benchSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &benchSink{ln: ln, delay: delay, deliveries: map[string]int{}}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { s.serve(c) })
		}
	})
	return s
}

func (s *benchSink) addr() (string, int) {
	a := s.ln.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port
}

func (s *benchSink) serve(c net.Conn) {
	defer c.Close()
	s.mu.Lock()
	s.conns++
	s.max = max(s.max, s.conns)
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.conns--; s.mu.Unlock() }()

	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriter(c)
	reply := func(line string) {
		w.WriteString(line + "\r\n")
		if r.Buffered() == 0 { // answer a pipelined group in one write
			w.Flush()
		}
	}
	reply("220 sink ESMTP")
	var rcpts []string
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(string(bytes.TrimSpace(line)))
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			w.WriteString("250-sink\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-8BITMIME\r\n")
			reply("250 SMTPUTF8")
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			rcpts = rcpts[:0]
			reply("250 2.1.0 ok")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			a := strings.Trim(strings.TrimPrefix(cmd, "RCPT TO:"), "<> ")
			rcpts = append(rcpts, strings.ToLower(a))
			reply("250 2.1.5 ok")
		case cmd == "DATA":
			if len(rcpts) == 0 {
				reply("554 5.5.1 no valid recipients")
				continue
			}
			reply("354 go ahead")
			for {
				l, err := r.ReadSlice('\n')
				if err != nil && err != bufio.ErrBufferFull {
					return
				}
				if err == nil && (string(l) == ".\r\n" || string(l) == ".\n") {
					break
				}
			}
			s.deliver(rcpts)
			rcpts = rcpts[:0]
			time.Sleep(s.delay)
			reply("250 2.0.0 queued")
		case strings.HasPrefix(cmd, "BDAT "):
			f := strings.Fields(cmd)
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				reply("501 5.5.4 bad size")
				return
			}
			// The chunk follows even a refused BDAT (RFC 3030 section 2).
			if _, err := io.CopyN(io.Discard, r, n); err != nil {
				return
			}
			last := len(f) > 2 && f[2] == "LAST"
			switch {
			case len(rcpts) == 0:
				reply("554 5.5.1 no valid recipients")
			case !last:
				reply("250 2.0.0 chunk ok")
			default:
				s.deliver(rcpts)
				rcpts = rcpts[:0]
				time.Sleep(s.delay)
				reply("250 2.0.0 queued")
			}
		case cmd == "RSET":
			rcpts = rcpts[:0]
			reply("250 2.0.0 ok")
		case cmd == "NOOP":
			reply("250 2.0.0 ok")
		case cmd == "QUIT":
			reply("221 2.0.0 bye")
			return
		default:
			reply("502 5.5.2 not implemented")
		}
	}
}

// deliver counts one message for rcpts.
func (s *benchSink) deliver(rcpts []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages++
	s.last = time.Now()
	if s.first.IsZero() {
		s.first = s.last
	}
	for _, a := range rcpts {
		s.deliveries[a]++
	}
}

// rate is the messages per second between the first and the last
// message, and that span.
func (s *benchSink) rate() (float64, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.last.Sub(s.first)
	if s.messages < 2 || d <= 0 {
		return 0, d
	}
	return float64(s.messages-1) / d.Seconds(), d
}
