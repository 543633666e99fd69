package smtptest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options shapes a test server. The zero value is a plain SMTP server
// without TLS or AUTH.
type Options struct {
	// TLS is "" (plaintext, no STARTTLS), "starttls" or "tls" (implicit).
	TLS string
	// Auth makes AUTH mandatory before MAIL FROM.
	Auth bool
	// Username and Password are the accepted credentials; they default to
	// "user" and "secret". For XOAUTH2 the password is the token.
	Username, Password string
	// Mechanisms lists the advertised AUTH mechanisms; nil means PLAIN,
	// LOGIN, CRAM-MD5 and XOAUTH2.
	Mechanisms []string
	// LMTP makes the server speak LMTP (RFC 2033).
	LMTP bool
	// MaxRecipients is advertised as LIMITS RCPTMAX; further RCPTs in a
	// transaction get 452 4.5.3. Zero means no limit.
	MaxRecipients int
	// IPv6 listens on [::1] instead of 127.0.0.1; the certificate covers
	// both. A test should skip when the machine has no IPv6 loopback.
	IPv6 bool
	// DiscardData reads each message to its end but keeps only its
	// envelope (Message.Data is nil): a benchmark server that holds tens
	// of megabytes of mail in its heap spends the machine's CPU on
	// garbage collection that a real relay, which spools to disk, does not.
	DiscardData bool
	// NoSMTPUTF8 leaves SMTPUTF8 (RFC 6531) out of the EHLO reply, as
	// many relays do; go-smtp then answers the SMTPUTF8 parameter with
	// 504. Like many relays, the server still takes a raw UTF-8 address
	// without it, so a test asserts on Envelopes, not on a refusal.
	NoSMTPUTF8 bool
	// ErrorLimit, when positive, ends a connection once the server has
	// refused that many commands on it (4xx and 5xx replies, all
	// counted), as Postfix does at smtpd_hard_error_limit and Exim at
	// smtp_accept_max_nonmail: the next command, whatever it is (an RSET
	// in front of a pipelined group, say), gets "421 4.7.0 localhost
	// Error: too many errors" and the connection closes. Neither it nor
	// the commands pipelined behind it are run; RSET, NOOP and QUIT that
	// go-smtp had already read in the same write as the refusal are still
	// answered as usual. Plaintext only (TLS "").
	ErrorLimit int
	// ErrorLimitSilent closes the connection at ErrorLimit without the
	// 421, as a server that just hangs up does.
	ErrorLimitSilent bool
	// DataDelay is how long the server holds a message's reply after its
	// data arrived, as a relay that scans or spools does; a client that
	// dies meanwhile leaves the message undelivered, its outcome unknown
	// to the client.
	DataDelay time.Duration
	// MaxMessageBytes is advertised as SIZE (RFC 1870); go-smtp refuses
	// a larger SIZE= on MAIL FROM, and larger data, with 552 5.3.4. Zero
	// advertises SIZE without a limit.
	MaxMessageBytes int64
}

// Envelope is one transaction's envelope as the server received it,
// whatever it answered: the addresses byte for byte as they came in MAIL
// FROM and RCPT TO (without the angle brackets, never case-folded or
// converted), and the MAIL FROM parameters that tell how to read them.
type Envelope struct {
	From string
	// SMTPUTF8 is set when MAIL FROM carried the SMTPUTF8 parameter (RFC
	// 6531 section 3.4).
	SMTPUTF8 bool
	// Body is MAIL FROM's BODY parameter ("8BITMIME"), empty without one.
	Body string
	// Rcpts holds the address of every RCPT TO of the transaction, in
	// order, accepted or refused.
	Rcpts []string
}

// Message is one accepted message.
type Message struct {
	From string
	// To holds the recipients the message was accepted for.
	To   []string
	Data []byte
	// At is when the server accepted the message: a test of a rate
	// counts the messages of each window.
	At time.Time
}

// Server is an in-process go-smtp server on 127.0.0.1 (or [::1]) that
// records what it accepts and fails chosen commands and dial steps. Its methods are safe for concurrent use.
type Server struct {
	opt    Options
	srv    *smtp.Server
	addr   *net.TCPAddr
	caFile string

	mu       sync.Mutex
	msgs     []Message
	envs     []Envelope
	rules    []*rule
	lmtp     map[string]*smtp.SMTPError
	active   int
	peak     int
	sessions int
	// live counts sessions whose handler has not ended (NewSession to
	// Logout); ended is signalled when it or active drops.
	live  int
	ended *sync.Cond
}

// rule is one injected failure: cmd is "GREETING", "EHLO", "MAIL", "RCPT",
// "DATA" or "IDLE"; addr,
// when set, limits a RCPT rule to one recipient; left < 0 means forever.
type rule struct {
	cmd  string
	addr string
	left int
	err  *smtp.SMTPError
	drop bool
}

// Start runs a server on 127.0.0.1:0. It is accepting connections when
// Start returns and is closed by t.Cleanup. Start fails the test on error.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	if opt.Username == "" {
		opt.Username = "user"
	}
	if opt.Password == "" {
		opt.Password = "secret"
	}
	if opt.Mechanisms == nil {
		opt.Mechanisms = []string{"PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"}
	}
	s := &Server{opt: opt, lmtp: map[string]*smtp.SMTPError{}}
	s.ended = sync.NewCond(&s.mu)
	s.srv = smtp.NewServer(smtp.BackendFunc(s.newSession))
	s.srv.Domain = "localhost"
	s.srv.LMTP = opt.LMTP
	s.srv.MaxRecipients = opt.MaxRecipients
	s.srv.AllowInsecureAuth = opt.TLS == ""
	s.srv.EnableSMTPUTF8 = !opt.NoSMTPUTF8
	s.srv.MaxMessageBytes = opt.MaxMessageBytes
	if opt.ErrorLimit > 0 && opt.TLS != "" {
		t.Fatalf("smtptest: ErrorLimit is for plaintext servers, not TLS %q", opt.TLS)
	}
	s.srv.ErrorLog = log.New(io.Discard, "", 0)

	var tlsConfig *tls.Config
	if opt.TLS != "" {
		cert, pemBytes, err := newCert()
		if err != nil {
			t.Fatalf("smtptest: %v", err)
		}
		s.caFile = filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(s.caFile, pemBytes, 0o600); err != nil {
			t.Fatalf("smtptest: %v", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	laddr := "127.0.0.1:0"
	if opt.IPv6 {
		laddr = "[::1]:0"
	}
	ln, err := net.Listen("tcp", laddr)
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	s.addr = ln.Addr().(*net.TCPAddr)
	var l net.Listener = &countingListener{Listener: ln, s: s}
	switch opt.TLS {
	case "":
	case "starttls":
		s.srv.TLSConfig = tlsConfig
	case "tls":
		l = tls.NewListener(l, tlsConfig)
	default:
		_ = ln.Close()
		t.Fatalf("smtptest: unknown TLS mode %q", opt.TLS)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.srv.Serve(l)
	}()
	t.Cleanup(func() {
		// Let the handlers end on their own first: go-smtp's Close races
		// with a handler still reading a BDAT chunk after its connection
		// dropped (it reads the chunk's pipe unlocked), which the race
		// detector reports. Clients have closed by now (their cleanups
		// run first), so this is quick; a held connection waits 5s.
		idle := make(chan struct{})
		go func() {
			s.mu.Lock()
			for s.live > 0 {
				s.ended.Wait()
			}
			s.mu.Unlock()
			close(idle)
		}()
		select {
		case <-idle:
		case <-time.After(5 * time.Second):
		}
		_ = s.srv.Close()
		// go-smtp's Close only closes listeners that Serve has registered;
		// a test that never connected may end before Serve ran.
		_ = l.Close()
		<-done
	})
	return s
}

// Host returns the listening IP address, "127.0.0.1" or "::1" (without
// brackets).
func (s *Server) Host() string { return s.addr.IP.String() }

// Port returns the listening TCP port.
func (s *Server) Port() int { return s.addr.Port }

// Addr returns host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host(), strconv.Itoa(s.Port())) }

// CAFile returns the path of the PEM certificate that a client must trust
// to talk TLS to the server; it is empty when TLS is off.
func (s *Server) CAFile() string { return s.caFile }

// Username returns the accepted user name.
func (s *Server) Username() string { return s.opt.Username }

// Password returns the accepted password.
func (s *Server) Password() string { return s.opt.Password }

// Messages returns a copy of the accepted messages, in order of acceptance.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.msgs))
	for i, m := range s.msgs {
		out[i] = Message{From: m.From, To: append([]string(nil), m.To...), Data: append([]byte(nil), m.Data...), At: m.At}
	}
	return out
}

// Envelopes returns a copy of every envelope the server received, in
// order, whether or not a message followed: one per MAIL FROM that
// go-smtp handed to the server (it answers a malformed command, or a
// parameter it does not offer, itself), with every RCPT TO after it. A
// command is recorded before the server answers it, so a client that has
// read the reply finds it here.
func (s *Server) Envelopes() []Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Envelope, len(s.envs))
	for i, e := range s.envs {
		out[i] = e
		out[i].Rcpts = append([]string(nil), e.Rcpts...)
	}
	return out
}

// Deliveries counts how many accepted messages were for addr (compared
// without regard to case), so a test can assert "exactly once".
func (s *Server) Deliveries(addr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.msgs {
		for _, to := range m.To {
			if strings.EqualFold(to, addr) {
				n++
			}
		}
	}
	return n
}

// Sessions returns how many connections the server has accepted.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// MaxConcurrent returns the peak number of simultaneous connections.
func (s *Server) MaxConcurrent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// WaitClosed waits up to d until every connection the server accepted has
// been closed, and reports whether they all were: a client that leaves a
// socket open after a failed dial makes it return false. The server
// closes its side once it reads the client's close, so a client that
// closed is seen at once, without polling.
func (s *Server) WaitClosed(d time.Duration) bool {
	timer := time.AfterFunc(d, func() {
		s.mu.Lock()
		s.ended.Broadcast()
		s.mu.Unlock()
	})
	defer timer.Stop()
	end := time.Now().Add(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.active > 0 && time.Now().Before(end) {
		s.ended.Wait()
	}
	return s.active == 0
}

// RejectRcpt makes every RCPT TO for addr fail with the given reply, e.g.
// RejectRcpt("ann@example.org", 550, "5.1.1", "no such user").
func (s *Server) RejectRcpt(addr string, code int, enhanced, text string) {
	s.RejectRcptTimes(addr, -1, code, enhanced, text)
}

// RejectRcptTimes is RejectRcpt for the next n RCPT TO commands for addr
// only; n < 0 means forever.
func (s *Server) RejectRcptTimes(addr string, n, code int, enhanced, text string) {
	s.addRule(&rule{cmd: "RCPT", addr: addr, left: n, err: smtpErr(code, enhanced, text)})
}

// FailCommand makes the next n commands cmd ("MAIL", "RCPT" or "DATA",
// where DATA means the reply to the final ".") fail with the given reply;
// n < 0 means forever. A 421 reply is sent but the connection stays open,
// as a client must close it itself (RFC 5321 section 3.8).
//
// Two dial steps can fail too: "EHLO" (which also covers HELO and LHLO)
// answers with the reply and goes on reading commands; "GREETING" sends
// the reply instead of the 220 and closes the connection, as a server
// that refuses a client outright does. GREETING is for plaintext servers
// (TLS "" or "starttls").
func (s *Server) FailCommand(cmd string, n, code int, enhanced, text string) {
	s.addRule(&rule{cmd: strings.ToUpper(cmd), left: n, err: smtpErr(code, enhanced, text)})
}

// DropAt makes the next n commands cmd ("EHLO", "MAIL", "RCPT" or "DATA")
// close the connection without a reply. For "DATA" the whole message is read and
// recorded first: the client has sent the final "." and gets no answer,
// the ambiguous case of RFC 1047.
func (s *Server) DropAt(cmd string, n int) {
	s.addRule(&rule{cmd: strings.ToUpper(cmd), left: n, drop: true})
}

// DropIdle makes the server close the connection right after it accepts
// each of the next n messages (after its 250 reply), as a server does with
// a connection left idle too long.
func (s *Server) DropIdle(n int) {
	s.addRule(&rule{cmd: "IDLE", left: n, drop: true})
}

// DropAfterData is DropAt("DATA", n).
func (s *Server) DropAfterData(n int) { s.DropAt("DATA", n) }

// LMTPStatus sets the per-recipient reply an LMTP server gives for addr
// after the final "."; recipients without one get 250.
func (s *Server) LMTPStatus(addr string, code int, enhanced, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lmtp[strings.ToLower(addr)] = smtpErr(code, enhanced, text)
}

func (s *Server) addRule(r *rule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, r)
}

// match consumes the first live rule for cmd (and addr, for RCPT).
func (s *Server) match(cmd, addr string) *rule {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rules {
		if r.cmd != cmd || r.left == 0 {
			continue
		}
		if r.addr != "" && !strings.EqualFold(r.addr, addr) {
			continue
		}
		if r.left > 0 {
			r.left--
		}
		return r
	}
	return nil
}

// smtpErr builds a reply; enhanced "" means none.
func smtpErr(code int, enhanced, text string) *smtp.SMTPError {
	ec := smtp.NoEnhancedCode
	if enhanced != "" {
		var a, b, c int
		if _, err := fmt.Sscanf(enhanced, "%d.%d.%d", &a, &b, &c); err == nil {
			ec = smtp.EnhancedCode{a, b, c}
		}
	}
	return &smtp.SMTPError{Code: code, EnhancedCode: ec, Message: text}
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	// go-smtp opens a session on EHLO, HELO or LHLO and answers an error
	// from here with its code.
	if r := s.match("EHLO", ""); r != nil {
		if r.drop {
			_ = c.Conn().Close()
			return nil, errDropped
		}
		return nil, r.err
	}
	s.mu.Lock()
	s.live++
	s.mu.Unlock()
	return &session{s: s, c: c, env: -1}, nil
}

// session keeps its authenticated flag apart from the transaction state,
// because go-smtp calls Reset after every message and on RSET.
type session struct {
	s      *Server
	c      *smtp.Conn
	authed bool
	from   string
	to     []string
	// env indexes this transaction's entry in Server.envs, -1 before its
	// MAIL FROM.
	env int
	// dropOnReset closes the connection once the current reply is out.
	dropOnReset bool
}

// errDropped is returned after the connection was closed on purpose.
var errDropped = errors.New("smtptest: connection dropped")

func (se *session) drop() error {
	_ = se.c.Conn().Close()
	return errDropped
}

func (se *session) AuthMechanisms() []string {
	if !se.s.opt.Auth {
		return nil
	}
	return se.s.opt.Mechanisms
}

func (se *session) Auth(mech string) (sasl.Server, error) {
	return newAuthServer(mech, se.s.opt.Username, se.s.opt.Password, func() { se.authed = true })
}

func (se *session) Mail(from string, opts *smtp.MailOptions) error {
	if connClosed(se.c.Conn()) {
		return errDropped
	}
	se.s.mu.Lock()
	se.env = len(se.s.envs)
	se.s.envs = append(se.s.envs, Envelope{From: from, SMTPUTF8: opts.UTF8, Body: string(opts.Body)})
	se.s.mu.Unlock()
	if se.s.opt.Auth && !se.authed {
		return smtp.ErrAuthRequired
	}
	if r := se.s.match("MAIL", from); r != nil {
		if r.drop {
			return se.drop()
		}
		return r.err
	}
	se.from = from
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if connClosed(se.c.Conn()) {
		return errDropped
	}
	if se.env >= 0 {
		se.s.mu.Lock()
		e := &se.s.envs[se.env]
		e.Rcpts = append(e.Rcpts, to)
		se.s.mu.Unlock()
	}
	if r := se.s.match("RCPT", to); r != nil {
		if r.drop {
			return se.drop()
		}
		return r.err
	}
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	data, err := se.read(r)
	if err != nil {
		return err
	}
	if d := se.s.opt.DataDelay; d > 0 {
		time.Sleep(d)
	}
	if connClosed(se.c.Conn()) {
		return errDropped
	}
	if ru := se.s.match("DATA", ""); ru != nil {
		if ru.drop {
			se.s.record(Message{From: se.from, To: se.to, Data: data})
			return se.drop()
		}
		return ru.err
	}
	se.s.record(Message{From: se.from, To: se.to, Data: data})
	se.dropOnReset = se.s.match("IDLE", "") != nil
	return nil
}

// read reads a message's data, keeping it unless Options.DiscardData.
func (se *session) read(r io.Reader) ([]byte, error) {
	if se.s.opt.DiscardData {
		_, err := io.Copy(io.Discard, r)
		return nil, err
	}
	return io.ReadAll(r)
}

// LMTPData answers once per recipient, as RFC 2033 section 4.2 requires.
func (se *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	data, err := se.read(r)
	if err != nil {
		return err
	}
	if connClosed(se.c.Conn()) {
		return errDropped
	}
	if ru := se.s.match("DATA", ""); ru != nil && !ru.drop {
		return ru.err
	}
	var ok []string
	se.s.mu.Lock()
	for _, to := range se.to {
		if e := se.s.lmtp[strings.ToLower(to)]; e != nil {
			status.SetStatus(to, e)
			continue
		}
		status.SetStatus(to, nil)
		ok = append(ok, to)
	}
	se.s.mu.Unlock()
	if len(ok) > 0 {
		se.s.record(Message{From: se.from, To: ok, Data: data})
	}
	return nil
}

// Reset runs after the reply to DATA has been written, which makes it the
// place to drop a connection for DropIdle.
func (se *session) Reset() {
	se.from = ""
	se.to = nil
	se.env = -1
	if se.dropOnReset {
		se.dropOnReset = false
		_ = se.drop()
	}
}

func (se *session) Logout() error {
	se.s.mu.Lock()
	se.s.live--
	se.s.ended.Broadcast()
	se.s.mu.Unlock()
	return nil
}

func (s *Server) record(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m.To = append([]string(nil), m.To...)
	m.At = time.Now()
	s.msgs = append(s.msgs, m)
}

// countingListener counts connections at the socket level, because go-smtp
// opens a second Session on the same connection after STARTTLS.
type countingListener struct {
	net.Listener
	s *Server
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.mu.Lock()
	l.s.sessions++
	l.s.active++
	l.s.peak = max(l.s.peak, l.s.active)
	l.s.mu.Unlock()
	cc := &countingConn{Conn: c, s: l.s, limit: l.s.opt.ErrorLimit, silent: l.s.opt.ErrorLimitSilent}
	if r := l.s.match("GREETING", ""); r != nil {
		// go-smtp then greets a closed connection, fails to read from it
		// and ends the session; it never sees the client.
		_, _ = io.WriteString(cc, replyLine(r.err))
		_ = cc.Close()
	}
	return cc, nil
}

// replyLine formats e as one reply line, for replies sent around go-smtp.
func replyLine(e *smtp.SMTPError) string {
	if e.EnhancedCode == smtp.NoEnhancedCode {
		return fmt.Sprintf("%d %s\r\n", e.Code, e.Message)
	}
	c := e.EnhancedCode
	return fmt.Sprintf("%d %d.%d.%d %s\r\n", e.Code, c[0], c[1], c[2], e.Message)
}

// countingConn lowers the active count before the socket closes, so a
// client that has seen the server close (EOF after QUIT) also sees the
// count already lowered. It also applies Options.ErrorLimit, counting
// the refusals go-smtp writes (one reply line per Write), and remembers
// that the server closed it, so that a session stops running commands
// go-smtp had read ahead (connClosed).
type countingConn struct {
	net.Conn
	s    *Server
	once sync.Once
	// closed is set when the server closed the connection.
	closed atomic.Bool
	// limit and silent are Options.ErrorLimit and ErrorLimitSilent;
	// errs counts the refusals written so far (go-smtp writes from one
	// goroutine per connection); spent is set when errs reaches limit,
	// and refused once the connection was ended for it.
	limit   int
	silent  bool
	errs    int
	spent   atomic.Bool
	refused sync.Once
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	// A final reply line is "ddd text"; a refusal starts with 4 or 5.
	if c.limit > 0 && len(p) >= 4 && p[3] == ' ' && (p[0] == '4' || p[0] == '5') {
		c.errs++
		if c.errs == c.limit {
			c.spent.Store(true)
		}
	}
	return n, err
}

// Read hands go-smtp the client's next bytes, unless the error limit was
// reached: then the next command, whatever it is, gets the 421 (refuse).
// go-smtp reads only when it has run every command it buffered.
func (c *countingConn) Read(p []byte) (int, error) {
	if !c.spent.Load() {
		return c.Conn.Read(p)
	}
	// Wait for the client's next command, as a server does, so that the
	// 421 answers it rather than arriving unasked.
	if _, err := c.Conn.Read(p); err != nil {
		return 0, err
	}
	c.refuse()
	return 0, io.EOF
}

// refuse ends a connection that reached the error limit: "421 4.7.0
// localhost Error: too many errors" (unless silent), then the close.
func (c *countingConn) refuse() {
	c.refused.Do(func() {
		if !c.silent {
			_, _ = io.WriteString(c.Conn, "421 4.7.0 localhost Error: too many errors\r\n")
		}
		_ = c.Close()
	})
}

func (c *countingConn) Close() error {
	c.closed.Store(true)
	c.once.Do(func() {
		c.s.mu.Lock()
		c.s.active--
		c.s.ended.Broadcast()
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

// connClosed reports whether the server closed c, the connection of a
// session (a *countingConn, or a TLS connection over one), or has just
// ended it for Options.ErrorLimit. go-smtp runs the commands it has
// buffered even after its connection closed; a real server that hangs up
// runs none, and neither does this one. Past the error limit, the first
// such command gets the 421 instead.
func connClosed(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	cc, ok := c.(*countingConn)
	if !ok {
		return false
	}
	if cc.spent.Load() {
		cc.refuse()
	}
	return cc.closed.Load()
}
