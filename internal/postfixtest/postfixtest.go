package postfixtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/mailrun/mailrun/internal/dovecottest"
	"github.com/mailrun/mailrun/internal/servertest"
)

// Domain is the virtual mailbox domain the server accepts mail for. Any
// address of Domain that is not in Server.Users is refused at RCPT TO with
// 550 5.1.1; any other domain with 550 5.7.1 (this relay relays nowhere).
const Domain = "example.test"

// NumUsers is the number of valid users: user001@example.test up to
// user100@example.test, each with a Maildir of its own.
const NumUsers = 100

// Server is a running private Postfix.
type Server struct {
	// Host is always 127.0.0.1; Port is where smtpd listens, with STARTTLS
	// required before MAIL and AUTH.
	Host string
	Port int
	// CAFile is the PEM certificate clients must trust (via ca_file).
	CAFile string
	// User and Password log in through SASL (AUTH PLAIN or LOGIN).
	User, Password string
	// Users are the valid recipients, in order, one mailbox each.
	Users []string
	// Dir holds everything: configuration, queue, Maildirs and logs.
	Dir string

	mailUID, mailGID int
}

// confData fills the templates in .ci/postfix/.
type confData struct {
	Dir, Domain, AuthSocket                string
	Port                                   int
	MailUID, MailGID                       int
	InternalUser, InternalGroup, LoginUser string
}

// Bounds of Start and Wait. Postfix starts in two or three seconds, most of
// them spent by "postfix check", and delivers a message to a Maildir in
// milliseconds, even on a machine busy with every package's tests; the
// bounds are far beyond that, so reaching one means something is wrong, and
// the test says so instead of hanging until go test's own timeout.
const (
	// startTimeout bounds Start as a whole, every attempt included.
	startTimeout = 60 * time.Second
	// probeTimeout bounds one dial and greeting.
	probeTimeout = 2 * time.Second
	// pollInterval separates two looks at the queue.
	pollInterval = 20 * time.Millisecond
	// drainTimeout bounds Wait for the queue to drain.
	drainTimeout = 30 * time.Second
	// logTail is how many lines of the mail log a failed test shows.
	logTail = 150
)

// Binary returns the path of the postfix command, or "" when it is not
// installed. /usr/sbin is searched too because a normal user's PATH often
// lacks it.
func Binary() string {
	return servertest.Binary("postfix")
}

// Start runs a fresh Postfix (and the Dovecot that serves its SASL) for t
// and returns when smtpd sends its greeting. It stops both in t.Cleanup.
//
// Start fails t when the instance cannot be configured or Postfix exits at
// every attempt. When Postfix or Dovecot is missing, when the test does
// not run as root (the master starts as root and switches to the postfix
// user), or when it does not answer within startTimeout, Start skips t,
// unless the CI environment variable is set: then it fails t, so CI cannot
// skip silently. Whatever it started is killed in every case.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, startTimeout)
}

// start is Start bounded by timeout.
func start(t testing.TB, timeout time.Duration) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		servertest.Unavailable(t, "postfix is not installed (bash .ci/postfix.sh)", "")
	}
	dovecot := dovecottest.Binary()
	if dovecot == "" {
		servertest.Unavailable(t, "dovecot is not installed (bash .ci/dovecot.sh); the private postfix asks its auth socket for SASL", "")
	}
	if os.Geteuid() != 0 {
		servertest.Unavailable(t, "a private postfix needs root: its master starts as root and switches to the postfix user", "")
	}
	templates := templateDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	// Not t.TempDir: a long test name makes a long path, which could push
	// Dovecot's unix sockets past the 108-byte sun_path limit.
	dir, err := os.MkdirTemp("", "mrpf")
	must(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	s := &Server{Host: "127.0.0.1", User: "mailrun@" + Domain, Dir: dir}
	data := s.identity(t)
	data.Dir, data.Domain, data.AuthSocket = dir, Domain, filepath.Join(dir, "sasl", "auth")
	s.prepare(t)
	render(t, templates, "main.cf.tmpl", filepath.Join(dir, "etc", "main.cf"), data)
	render(t, templates, "dovecot-auth.conf.tmpl", filepath.Join(dir, "dovecot.conf"), data)

	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Logf("postfix log (last %d lines):\n%s\ndovecot log:\n%s", logTail, tail(s.Log(), logTail), log)
		}
	})
	if err := s.startAuth(ctx, t, dovecot, data.AuthSocket); err != nil {
		if ctx.Err() != nil {
			servertest.Unavailable(t, fmt.Sprintf("dovecot's auth socket did not answer within %v", timeout), "\n"+err.Error())
		}
		t.Fatalf("start dovecot for SASL: %v", err)
	}
	// master.cf names smtpd's port; "postfix check" wants it there.
	data.Port = servertest.FreePorts(t, 1)[0]
	render(t, templates, "master.cf.tmpl", filepath.Join(dir, "etc", "master.cf"), data)
	// "postfix check" creates the queue directories with their owners
	// (post-install create-missing) and warns about wrong permissions,
	// as "postfix start" would before it starts the master.
	if out, err := servertest.Run(ctx, bin, "-c", filepath.Join(dir, "etc"), "check"); err != nil {
		if ctx.Err() != nil {
			servertest.Unavailable(t, fmt.Sprintf("postfix check did not finish within %v", timeout), "")
		}
		t.Fatalf("postfix check: %v\n%s\n%s", err, out, s.Log())
	}
	master, err := masterPath(ctx)
	if err != nil {
		t.Fatalf("find the postfix master: %v", err)
	}

	// A port picked free can be taken before the master binds it; a few
	// fresh attempts make that race harmless.
	var lastErr error
	for attempt := 0; attempt < 3 && ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			data.Port = servertest.FreePorts(t, 1)[0]
			render(t, templates, "master.cf.tmpl", filepath.Join(dir, "etc", "master.cf"), data)
		}
		if lastErr = s.startPostfix(ctx, t, master, data.Port); lastErr == nil {
			s.Port = data.Port
			return s
		}
	}
	if ctx.Err() != nil {
		servertest.Unavailable(t, fmt.Sprintf("postfix did not start within %v", timeout), fmt.Sprintf("\n%v\n%s", lastErr, s.Log()))
	}
	t.Fatalf("start postfix: %v\n%s", lastErr, s.Log())
	return nil
}

// templateDir finds .ci/postfix/ at the root of the module that holds the
// working directory, which go test sets to the package under test.
func templateDir(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	must(t, err)
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, ".ci", "postfix")
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s: the postfix templates live in .ci/postfix/ at the module root", wd)
		}
	}
}

// render executes the template name from dir into path.
func render(t testing.TB, dir, name, path string, data confData) {
	t.Helper()
	tmpl, err := template.New(name).Option("missingkey=error").ParseFiles(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("postfix templates: %v", err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		t.Fatalf("render %s: %v", name, err)
	}
	must(t, os.WriteFile(path, b.Bytes(), 0o644))
}

// identity picks the users the instance runs as: Postfix's own mail_owner
// (postfix, from the Debian package), Dovecot's internal and login users,
// and nobody as the owner of the Maildirs, since virtual(8) refuses to
// deliver as root.
func (s *Server) identity(t testing.TB) confData {
	t.Helper()
	if _, err := user.Lookup("postfix"); err != nil {
		t.Fatalf("the postfix user from the Debian package is missing: %v", err)
	}
	internal, err := user.Lookup("dovecot")
	if err != nil {
		t.Fatalf("the dovecot user from the Debian package is missing: %v", err)
	}
	login, err := user.Lookup("dovenull")
	if err != nil {
		login = internal
	}
	g, err := user.LookupGroupId(internal.Gid)
	must(t, err)
	mail, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("the nobody user, owner of the test Maildirs, is missing: %v", err)
	}
	s.mailUID, _ = strconv.Atoi(mail.Uid)
	s.mailGID, _ = strconv.Atoi(mail.Gid)
	return confData{
		InternalUser: internal.Username, InternalGroup: g.Name, LoginUser: login.Username,
		MailUID: s.mailUID, MailGID: s.mailGID,
	}
}

// prepare writes the certificate, the user tables and the Maildirs.
func (s *Server) prepare(t testing.TB) {
	t.Helper()
	// The unprivileged Postfix and Dovecot processes must reach the files
	// inside.
	must(t, os.Chmod(s.Dir, 0o755))
	for _, sub := range []string{"etc", "queue", "sasl", "mail", "dovecot/run", "dovecot/state"} {
		must(t, os.MkdirAll(filepath.Join(s.Dir, sub), 0o755))
	}
	certPEM, keyPEM := servertest.SelfSigned(t, "mailrun postfix test")
	s.CAFile = filepath.Join(s.Dir, "cert.pem")
	must(t, os.WriteFile(s.CAFile, certPEM, 0o644))
	// smtpd reads its key as root, before it drops privileges.
	must(t, os.WriteFile(filepath.Join(s.Dir, "key.pem"), keyPEM, 0o600))

	secret := make([]byte, 12)
	_, err := rand.Read(secret)
	must(t, err)
	s.Password = hex.EncodeToString(secret)
	must(t, os.WriteFile(filepath.Join(s.Dir, "dovecot", "passwd"), []byte(s.User+":{PLAIN}"+s.Password+"::::::\n"), 0o644))

	// virtual_mailbox_maps: a trailing slash means Maildir. The Maildirs are
	// made in advance, as virtual(8) asks, so every mailbox exists (and
	// counts zero) before anything is delivered.
	var vmailbox strings.Builder
	for i := 1; i <= NumUsers; i++ {
		local := fmt.Sprintf("user%03d", i)
		addr := local + "@" + Domain
		s.Users = append(s.Users, addr)
		fmt.Fprintf(&vmailbox, "%s %s/%s/\n", addr, Domain, local)
		for _, sub := range []string{"cur", "new", "tmp"} {
			must(t, os.MkdirAll(filepath.Join(s.Dir, "mail", Domain, local, sub), 0o700))
		}
	}
	must(t, os.WriteFile(filepath.Join(s.Dir, "etc", "vmailbox"), []byte(vmailbox.String()), 0o644))
	must(t, filepath.WalkDir(filepath.Join(s.Dir, "mail", Domain), func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, s.mailUID, s.mailGID)
	}))
}

// masterPath asks postconf where the master daemon lives.
func masterPath(ctx context.Context) (string, error) {
	out, err := servertest.Run(ctx, "postconf", "-d", "-h", "daemon_directory")
	if err != nil {
		// postconf sits next to postfix, which a normal PATH may lack.
		out, err = servertest.Run(ctx, filepath.Join(filepath.Dir(Binary()), "postconf"), "-d", "-h", "daemon_directory")
	}
	if err != nil {
		return "", fmt.Errorf("postconf -d daemon_directory: %w: %s", err, out)
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "master")
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return p, nil
}

// startAuth runs Dovecot with nothing but the auth socket Postfix's smtpd
// asks, and waits for the socket to send its handshake.
func (s *Server) startAuth(ctx context.Context, t testing.TB, bin, socket string) error {
	t.Helper()
	p, ready, err := servertest.Launch(ctx, t, "dovecot", bin, "-F", "-c", filepath.Join(s.Dir, "dovecot.conf"))
	if err != nil {
		return err
	}
	// The server speaks first on the auth socket (Dovecot's auth protocol):
	// VERSION, its mechanisms, then DONE.
	err = servertest.Poll(ctx, p, func(ctx context.Context) error {
		return handshake(ctx, "unix", socket, "DONE")
	})
	if err == nil && !ready() {
		err = fmt.Errorf("ready just as the deadline passed: %w", ctx.Err())
	}
	if err != nil {
		p.Stop()
		log, _ := os.ReadFile(filepath.Join(s.Dir, "dovecot.log"))
		return fmt.Errorf("auth socket %s: %w\n%s\n%s", socket, err, p.Output(), log)
	}
	return nil
}

// startPostfix runs the master in the foreground and waits for smtpd's
// greeting on port. master -d stays in the foreground and, unlike "postfix
// start-fg" (master -s), in the process group given to it, so one kill
// reaches every Postfix process and the master is reaped as a child.
func (s *Server) startPostfix(ctx context.Context, t testing.TB, master string, port int) error {
	t.Helper()
	p, ready, err := servertest.Launch(ctx, t, "postfix", master, "-c", filepath.Join(s.Dir, "etc"), "-d")
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(s.Host, strconv.Itoa(port))
	err = servertest.Poll(ctx, p, func(ctx context.Context) error {
		return handshake(ctx, "tcp", addr, "220 ")
	})
	if err == nil && !ready() {
		err = fmt.Errorf("ready just as the deadline passed: %w", ctx.Err())
	}
	if err != nil {
		p.Stop()
		return fmt.Errorf("smtpd on %s: %w\n%s", addr, err, p.Output())
	}
	return nil
}

// handshake connects once and reads lines until one starts with want, for
// at most probeTimeout and never past the deadline of ctx. A greeting
// rather than an accepted connection proves the daemon serves the socket.
func handshake(ctx context.Context, network, addr, want string) error {
	c, err := servertest.Dial(ctx, network, addr, probeTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for range 20 {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.HasPrefix(line, want) {
			return nil
		}
	}
	return fmt.Errorf("no line starting with %q", want)
}

// Log returns Postfix's mail log so far (maillog_file).
func (s *Server) Log() string {
	b, err := os.ReadFile(filepath.Join(s.Dir, "maillog"))
	if err != nil {
		return fmt.Sprintf("(no postfix log: %v)", err)
	}
	return string(b)
}

func tail(text string, n int) string {
	lines := strings.SplitAfter(text, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

// queueFiles counts the messages in each queue of Postfix.
func (s *Server) queueFiles(t testing.TB) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, q := range []string{"maildrop", "incoming", "active", "deferred", "hold", "corrupt"} {
		err := filepath.WalkDir(filepath.Join(s.Dir, "queue", q), func(_ string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				n[q]++
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("read postfix queue %s: %v", q, err)
		}
	}
	return n
}

// Wait returns once Postfix has delivered every message it accepted: its
// incoming, active and maildrop queues are empty. Postfix answers 250 to a
// message once it is safe in the incoming queue, so after the client has
// its replies, an empty queue means every accepted message is in a Maildir.
//
// Wait fails t when a message is deferred, held or corrupt (a delivery
// problem of the instance, which would never drain in a test's time), or
// when the queue has not drained within drainTimeout.
func (s *Server) Wait(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(drainTimeout)
	for {
		n := s.queueFiles(t)
		if n["deferred"]+n["hold"]+n["corrupt"] > 0 {
			t.Fatalf("postfix could not deliver every message: queue %v\n%s", n, tail(s.Log(), logTail))
		}
		if n["maildrop"]+n["incoming"]+n["active"] == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("postfix's queue did not drain within %v: %v\n%s", drainTimeout, n, tail(s.Log(), logTail))
		}
		time.Sleep(pollInterval)
	}
}

// maildir is the folder of the mailbox of addr, one of Users.
func (s *Server) maildir(t testing.TB, addr string) string {
	t.Helper()
	if !slices.Contains(s.Users, addr) {
		t.Fatalf("<%s> is not one of the test users (user001@%s ... user%03d@%s)", addr, Domain, NumUsers, Domain)
	}
	local, _, _ := strings.Cut(addr, "@")
	return filepath.Join(s.Dir, "mail", Domain, local)
}

// Messages waits for the queue to drain (Wait) and returns the messages
// delivered to addr, one of Users, byte for byte as virtual(8) wrote them
// (LF line ends, with the Return-Path, Delivered-To and X-Original-To it
// prepends), oldest first.
func (s *Server) Messages(t testing.TB, addr string) [][]byte {
	t.Helper()
	s.Wait(t)
	return s.read(t, addr)
}

func (s *Server) read(t testing.TB, addr string) [][]byte {
	t.Helper()
	dir := s.maildir(t, addr)
	type file struct {
		path string
		mod  time.Time
	}
	var files []file
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		must(t, err)
		for _, e := range entries {
			info, err := e.Info()
			must(t, err)
			files = append(files, file{filepath.Join(dir, sub, e.Name()), info.ModTime()})
		}
	}
	slices.SortFunc(files, func(a, b file) int {
		if c := a.mod.Compare(b.mod); c != 0 {
			return c
		}
		return strings.Compare(a.path, b.path)
	})
	out := make([][]byte, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f.path)
		must(t, err)
		out = append(out, b)
	}
	return out
}

// Count waits for the queue to drain (Wait) and returns the number of
// messages delivered to addr, one of Users.
func (s *Server) Count(t testing.TB, addr string) int {
	t.Helper()
	return len(s.Messages(t, addr))
}

// Counts waits for the queue to drain (Wait) and returns the number of
// messages in each mailbox that holds any.
func (s *Server) Counts(t testing.TB) map[string]int {
	t.Helper()
	s.Wait(t)
	n := map[string]int{}
	for _, u := range s.Users {
		if c := len(s.read(t, u)); c > 0 {
			n[u] = c
		}
	}
	return n
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
