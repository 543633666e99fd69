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
//  4. run "dovecot -F -c conf" and wait, bounded, until every port answers;
//  5. kill its process group in t.Cleanup.
//
// Deliver drops a message into Maildir/new, which is how an MDA delivers.
package dovecottest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

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
	if p, err := exec.LookPath("dovecot"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/dovecot", "/usr/local/sbin/dovecot"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Start runs a fresh Dovecot for t and returns when all four ports accept
// connections. It stops the server in t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("dovecot is not installed but CI is set: run .ci/dovecot.sh")
		}
		t.Skip("dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d); skipping")
	}
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

	// A port picked free can be taken before Dovecot binds it; a few fresh
	// attempts make that race harmless.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports := freePorts(t, 4)
		data.IMAP, data.IMAPS, data.POP3, data.POP3S = ports[0], ports[1], ports[2], ports[3]
		if lastErr = s.run(t, bin, data); lastErr == nil {
			s.IMAP, s.IMAPS, s.POP3, s.POP3S = ports[0], ports[1], ports[2], ports[3]
			return s
		}
	}
	log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
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
	certPEM, keyPEM := selfSigned(t)
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

// run starts Dovecot once and waits for its ports.
func (s *Server) run(t testing.TB, bin string, data confData) error {
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
	cmd := exec.Command(bin, "-F", "-c", confPath)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so cleanup can reach the children too.
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// A graceful SIGTERM shutdown takes Dovecot 4 to 6 seconds; the
	// instance and its folder are thrown away, so the whole process group
	// (master and the children it spawned) is killed at once.
	stop := func() {
		killGroup(cmd)
		<-exited
	}
	if err := waitPorts(exited, data.IMAP, data.IMAPS, data.POP3, data.POP3S); err != nil {
		stop()
		return fmt.Errorf("%w: %s", err, out.String())
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(s.Dir, "dovecot.log"))
			t.Logf("dovecot log:\n%s", log)
		}
	})
	return nil
}

// waitPorts polls until every port accepts a connection, for at most 15
// seconds, and gives up early when Dovecot exits.
func waitPorts(exited <-chan error, ports ...int) error {
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for _, port := range ports {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				_ = c.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("port %d did not answer within 15s: %w", port, err)
			}
			select {
			case err := <-exited:
				return fmt.Errorf("dovecot exited: %v", err)
			case <-tick.C:
			}
		}
	}
	return nil
}

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return ports
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

// selfSigned makes a P-256 certificate for 127.0.0.1 that is its own CA.
func selfSigned(t testing.TB) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "mailrun dovecot test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	must(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
