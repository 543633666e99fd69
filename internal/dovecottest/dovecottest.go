// Package dovecottest starts a private Dovecot IMAP and POP3 server on
// 127.0.0.1 for tests, so the mailbox clients and the bounce processor are
// tested against a real server rather than a mock of the wire.
//
// Flow of Start:
//  1. find the dovecot binary; skip the test when it is missing, or fail
//     when the CI environment variable is set, so CI cannot skip silently;
//  2. make a temporary folder, a certificate for 127.0.0.1 (written as the
//     CA file clients trust), a passwd-file user and an empty Maildir;
//  3. render dovecot.conf.tmpl with free loopback ports chosen at run time;
//  4. run "dovecot -F -c conf" (run) and poll until every port sends its
//     greeting, through TLS on the implicit-TLS ports (waitReady);
//  5. kill its process group in t.Cleanup, registered as soon as it runs.
//
// Start as a whole is bounded by startTimeout; past it Start kills Dovecot
// and skips the test, or fails it when CI is set.
//
// Deliver drops a message into Maildir/new, which is how an MDA delivers.
package dovecottest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"github.com/mailrun/mailrun/internal/servertest"
	"github.com/mailrun/mailrun/mailbox"
)

//go:embed dovecot.conf.tmpl
var confTemplate string

// Server is a running private Dovecot.
type Server struct {
	// Host is always 127.0.0.1.
	Host string
	// Ports: plain/STARTTLS and implicit TLS, for IMAP and POP3.
	IMAP, IMAPS, POP3, POP3S int
	// User and Password log in to the one mailbox.
	User, Password string
	// CAFile is the PEM certificate clients must trust (via ca_file).
	CAFile string
	// Dir holds everything; Maildir is the user's mail folder.
	Dir, Maildir string

	uid, gid int
	seq      atomic.Int64
}

type confData struct {
	Dir                                    string
	IMAP, IMAPS, POP3, POP3S               int
	InternalUser, InternalGroup, LoginUser string
	MailUID, MailGID                       int
}

// Binary returns the path of the dovecot executable, or "" when it is not
// installed. /usr/sbin is searched too because a normal user's PATH often
// lacks it.
func Binary() string {
	return servertest.Binary("dovecot")
}

// Bounds of Start. Dovecot answers within a second, even on a machine busy
// with every package's tests; startTimeout is far beyond that, so reaching
// it means something is wrong, and the test says so instead of hanging
// until go test's own timeout.
const (
	// startTimeout bounds Start as a whole, every attempt included.
	startTimeout = 60 * time.Second
	// probeTimeout bounds one dial, TLS handshake and greeting.
	probeTimeout = 2 * time.Second
)

// Start runs a fresh Dovecot for t and returns when all four ports send
// their greeting. It stops the server in t.Cleanup.
//
// Start fails t when Dovecot cannot be configured or exits at every
// attempt. When it is missing, or does not answer within startTimeout, Start
// skips t, unless the CI environment variable is set: then it fails t, so
// CI cannot skip silently. The Dovecot it started is killed in every case.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, startTimeout)
}

// start is Start bounded by timeout.
func start(t testing.TB, timeout time.Duration) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		servertest.Unavailable(t, "dovecot is not installed (bash .ci/dovecot.sh, or apt-get install dovecot-imapd dovecot-pop3d)", "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// Not t.TempDir: its long path would push Dovecot's unix sockets past
	// the 108-byte sun_path limit.
	dir, err := os.MkdirTemp("", "mrdv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	s := &Server{Host: "127.0.0.1", User: "bounces@acme.example", Password: "Tr0ub4dor&3-bounce", Dir: dir}
	data := s.identity(t)
	data.Dir = dir
	s.prepare(t)
	// The probes trust what the clients under test trust.
	roots := x509.NewCertPool()
	ca, err := os.ReadFile(s.CAFile)
	must(t, err)
	if !roots.AppendCertsFromPEM(ca) {
		t.Fatalf("no certificate in %s", s.CAFile)
	}

	// A port picked free can be taken before Dovecot binds it; a few fresh
	// attempts make that race harmless.
	var lastErr error
	for attempt := 0; attempt < 3 && ctx.Err() == nil; attempt++ {
		ports := servertest.FreePorts(t, 4)
		data.IMAP, data.IMAPS, data.POP3, data.POP3S = ports[0], ports[1], ports[2], ports[3]
		if lastErr = s.run(ctx, t, bin, data, roots); lastErr == nil {
			s.IMAP, s.IMAPS, s.POP3, s.POP3S = ports[0], ports[1], ports[2], ports[3]
			return s
		}
	}
	log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
	if ctx.Err() != nil {
		servertest.Unavailable(t, fmt.Sprintf("dovecot did not start within %v", timeout), fmt.Sprintf("\n%v\n%s", lastErr, log))
	}
	t.Fatalf("start dovecot: %v\n%s", lastErr, log)
	return nil
}

// identity picks the users Dovecot runs as; see dovecot.conf.tmpl.
func (s *Server) identity(t testing.TB) confData {
	t.Helper()
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			t.Fatal(err)
		}
		s.uid, s.gid = os.Geteuid(), os.Getegid()
		return confData{InternalUser: u.Username, InternalGroup: g.Name, LoginUser: u.Username, MailUID: s.uid, MailGID: s.gid}
	}
	internal, err := user.Lookup("dovecot")
	if err != nil {
		t.Fatalf("running as root needs the dovecot user from the Debian package: %v", err)
	}
	login, err := user.Lookup("dovenull")
	if err != nil {
		login = internal
	}
	g, err := user.LookupGroupId(internal.Gid)
	if err != nil {
		t.Fatal(err)
	}
	s.uid, _ = strconv.Atoi(internal.Uid)
	s.gid, _ = strconv.Atoi(internal.Gid)
	return confData{InternalUser: internal.Username, InternalGroup: g.Name, LoginUser: login.Username, MailUID: s.uid, MailGID: s.gid}
}

// prepare writes the certificate, the passwd file and the Maildir.
func (s *Server) prepare(t testing.TB) {
	t.Helper()
	// Unprivileged Dovecot processes must reach the files inside.
	must(t, os.Chmod(s.Dir, 0o755))
	certPEM, keyPEM := servertest.SelfSigned(t, "mailrun dovecot test")
	s.CAFile = filepath.Join(s.Dir, "cert.pem")
	must(t, os.WriteFile(s.CAFile, certPEM, 0o644))
	must(t, os.WriteFile(filepath.Join(s.Dir, "key.pem"), keyPEM, 0o600))
	must(t, os.WriteFile(filepath.Join(s.Dir, "passwd"), []byte(s.User+":{PLAIN}"+s.Password+"::::::\n"), 0o644))
	s.Maildir = filepath.Join(s.Dir, "home", s.User, "Maildir")
	for _, sub := range []string{"cur", "new", "tmp"} {
		must(t, os.MkdirAll(filepath.Join(s.Maildir, sub), 0o700))
	}
	s.chownTree(t, filepath.Join(s.Dir, "home"))
}

func (s *Server) chownTree(t testing.TB, root string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	must(t, filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, s.uid, s.gid)
	}))
}

// run starts Dovecot once and waits for its ports. Until they answer, the
// deadline of ctx kills Dovecot; after that it lives until t's cleanup.
func (s *Server) run(ctx context.Context, t testing.TB, bin string, data confData, roots *x509.CertPool) error {
	t.Helper()
	var conf bytes.Buffer
	tmpl := template.Must(template.New("dovecot.conf").Parse(confTemplate))
	if err := tmpl.Execute(&conf, data); err != nil {
		return err
	}
	confPath := filepath.Join(s.Dir, "dovecot.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
		return err
	}
	for _, sub := range []string{"run", "state"} {
		_ = os.RemoveAll(filepath.Join(s.Dir, sub))
		if err := os.MkdirAll(filepath.Join(s.Dir, sub), 0o755); err != nil {
			return err
		}
	}
	// Registered before Launch registers the kill, so it runs after it.
	ready := false
	t.Cleanup(func() {
		if ready && t.Failed() {
			log, _ := os.ReadFile(filepath.Join(s.Dir, "dovecot.log"))
			t.Logf("dovecot log:\n%s", log)
		}
	})
	// Its own process group, so cleanup can reach the children too. A
	// graceful SIGTERM shutdown takes Dovecot 4 to 6 seconds; the instance
	// and its folder are thrown away, so the whole group (master and the
	// children it spawned) is killed at once.
	p, stopDeadline, err := servertest.Launch(ctx, t, "dovecot", bin, "-F", "-c", confPath)
	if err != nil {
		return err
	}

	err = waitReady(ctx, p, roots, []probe{
		{"imap", data.IMAP, false, "* OK"},
		{"imaps", data.IMAPS, true, "* OK"},
		{"pop3", data.POP3, false, "+OK"},
		{"pop3s", data.POP3S, true, "+OK"},
	})
	// stopDeadline is false when the deadline has already fired its kill.
	if err == nil && !stopDeadline() {
		err = fmt.Errorf("ready just as the deadline passed: %w", ctx.Err())
	}
	if err != nil {
		p.Stop()
		return fmt.Errorf("%w\n%s", err, p.Output())
	}
	ready = true
	return nil
}

// probe is one listener of Dovecot: ready once it sends the greeting of its
// protocol, "* OK" for IMAP (RFC 9051 section 7.1.1) or "+OK" for POP3
// (RFC 1939 section 4), after a TLS handshake on an implicit-TLS port. A
// greeting rather than an accepted connection proves the login process
// serves the port, and that the port is ours.
type probe struct {
	name     string
	port     int
	tls      bool
	greeting string
}

// waitReady polls every port until it greets, and gives up when ctx is
// done or Dovecot exits.
func waitReady(ctx context.Context, p *servertest.Proc, roots *x509.CertPool, probes []probe) error {
	for _, pr := range probes {
		err := servertest.Poll(ctx, p, func(ctx context.Context) error {
			return greet(ctx, pr, roots)
		})
		if err == nil {
			continue
		}
		// Poll wraps ctx.Err() only when the deadline ended it.
		if errors.Is(err, ctx.Err()) {
			return fmt.Errorf("%s port %d did not greet: %w", pr.name, pr.port, err)
		}
		return err
	}
	return nil
}

// greet connects to one port once and reads its greeting, for at most
// probeTimeout and never past the deadline of ctx.
func greet(ctx context.Context, pr probe, roots *x509.CertPool) error {
	raw, err := servertest.Dial(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(pr.port)), probeTimeout)
	if err != nil {
		return err
	}
	defer raw.Close()
	c := raw
	if pr.tls {
		c = tls.Client(raw, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, pr.greeting) {
		return fmt.Errorf("greeting %q, want %q", strings.TrimSpace(line), pr.greeting)
	}
	return nil
}

// Config returns client settings for this server: protocol "imap" or
// "pop3", security "tls", "starttls" or "none".
func (s *Server) Config(protocol, security string) mailbox.Config {
	port := map[string]int{"imap": s.IMAP, "pop3": s.POP3}[protocol]
	if security == "tls" {
		port = map[string]int{"imap": s.IMAPS, "pop3": s.POP3S}[protocol]
	}
	return mailbox.Config{
		Protocol: protocol, Host: s.Host, Port: port, Security: security,
		CAFile: s.CAFile, Username: s.User, Password: s.Password,
		Timeout: 20 * time.Second,
	}
}

// Deliver writes raw into Maildir/new under a unique name, as an MDA would,
// and returns the file name.
func (s *Server) Deliver(t testing.TB, raw []byte) string {
	t.Helper()
	name := fmt.Sprintf("%d.M%dP%d.mailrun-test", time.Now().Unix(), s.seq.Add(1), os.Getpid())
	tmp := filepath.Join(s.Maildir, "tmp", name)
	must(t, os.WriteFile(tmp, raw, 0o600))
	if os.Geteuid() == 0 {
		must(t, os.Lchown(tmp, s.uid, s.gid))
	}
	must(t, os.Rename(tmp, filepath.Join(s.Maildir, "new", name)))
	return name
}

// Messages returns the raw messages in a folder ("" or "INBOX" for the
// inbox), sorted by content so tests can compare them; a missing folder is
// empty.
func (s *Server) Messages(t testing.TB, folder string) [][]byte {
	t.Helper()
	dir := s.Maildir
	if folder != "" && !strings.EqualFold(folder, "INBOX") {
		// Maildir++ keeps folders as dot-prefixed siblings of cur/new/tmp.
		dir = filepath.Join(s.Maildir, "."+strings.ReplaceAll(folder, "/", "."))
	}
	var out [][]byte
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		must(t, err)
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, sub, e.Name()))
			must(t, err)
			out = append(out, b)
		}
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i], out[j]) < 0 })
	return out
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
