package servertest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Bounds of a daemon's life. A server the helpers start answers within a
// few seconds, even on a machine busy with every package's tests; these
// bounds are far beyond that, so reaching one means something is wrong.
const (
	// pollInterval separates two tries of Poll.
	pollInterval = 20 * time.Millisecond
	// waitDelay bounds how long Wait waits, once a daemon has exited, for
	// a child still holding the output pipe (exec.Cmd.WaitDelay).
	waitDelay = 2 * time.Second
	// reapTimeout bounds the wait for a killed daemon to be reaped.
	reapTimeout = 10 * time.Second
)

// Unavailable skips t because no server can serve it (why says what is
// missing), or fails t when the CI environment variable is set, so CI
// cannot skip silently; detail follows the verdict.
func Unavailable(t testing.TB, why, detail string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s; CI is set, so this fails%s", why, detail)
	}
	t.Skipf("%s; skipping%s", why, detail)
}

// SelfSigned makes a P-256 certificate for 127.0.0.1 and localhost, valid
// for a day, that is its own CA, so clients trust it through a CA file.
// It returns the certificate and its PKCS #8 key in PEM, and fails t when
// either cannot be made.
func SelfSigned(t testing.TB, commonName string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
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

// FreePorts returns n distinct TCP ports of 127.0.0.1 that were free a
// moment ago. Another process may take one before the server binds it, so
// a caller retries with fresh ports when its server cannot listen. It
// fails t when no port can be had.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	// All held open at once, so the n ports differ.
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

// Run runs a short command to its end in a process group of its own,
// killed as a whole when ctx is done, and returns its output (stdout and
// stderr) with the error of exec.Cmd.Run.
func Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	ownGroup(cmd)
	cmd.Cancel = func() error {
		killGroup(cmd)
		return nil
	}
	cmd.WaitDelay = waitDelay
	err := cmd.Run()
	return out.Bytes(), err
}

// Proc is one running daemon, in a process group of its own with every
// child it spawns.
type Proc struct {
	name   string
	cmd    *exec.Cmd
	cancel context.CancelFunc // cancels the command's context
	done   chan struct{}      // closed once Wait has returned
	err    error              // Wait's result, set before done is closed
	out    bytes.Buffer       // stdout and stderr, to be read once done is closed
	once   sync.Once
}

// Launch starts argv, a daemon that stays in the foreground, and registers
// in t.Cleanup the kill of its process group; name stands for it in
// messages. The daemon outlives ctx once ready is called: until then the
// deadline of ctx kills it. ready reports false when that deadline has
// already fired its kill. Launch returns the error of exec.Cmd.Start.
func Launch(ctx context.Context, t testing.TB, name string, argv ...string) (p *Proc, ready func() bool, err error) {
	t.Helper()
	// The command's context outlives the helper's Start (the server serves
	// the whole test), so it is not ctx: ctx reaches it through AfterFunc
	// below.
	procCtx, cancel := context.WithCancel(context.Background())
	p = &Proc{name: name, cancel: cancel, done: make(chan struct{})}
	p.cmd = exec.CommandContext(procCtx, argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	// The instance and its folder are thrown away, so the whole group is
	// killed at once rather than shut down gracefully.
	ownGroup(p.cmd)
	p.cmd.Cancel = func() error {
		killGroup(p.cmd)
		return nil
	}
	// The children inherit the output pipe; without WaitDelay, Wait would
	// wait for the last of them however long it lives.
	p.cmd.WaitDelay = waitDelay
	if err := p.cmd.Start(); err != nil {
		cancel()
		return nil, nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.Stop() {
			t.Logf("%s (pid %d) was not reaped within %v of SIGKILL", name, p.cmd.Process.Pid, reapTimeout)
		}
	})
	return p, context.AfterFunc(ctx, cancel), nil
}

// Stop kills the process group, at most once, and reports whether the
// daemon was reaped within reapTimeout. It may be called any number of
// times.
func (p *Proc) Stop() bool {
	p.once.Do(func() {
		// Directly, not only through the context: when the daemon has
		// already exited, exec no longer calls Cancel, yet its children
		// may live on.
		killGroup(p.cmd)
		p.cancel()
	})
	select {
	case <-p.done:
		return true
	case <-time.After(reapTimeout):
		return false
	}
}

// Output is what the daemon printed, once it has exited, or a note that it
// is still running.
func (p *Proc) Output() string {
	select {
	case <-p.done:
		return p.out.String()
	default:
		return "(" + p.name + " still running)"
	}
}

// Poll calls try until it returns nil, every pollInterval, and gives up
// when ctx is done or the daemon p exits. The error then wraps ctx.Err()
// or, for an exit, names the daemon and its exit status; either way it
// ends with the last error of try that the deadline did not cut short.
func Poll(ctx context.Context, p *Proc, try func(context.Context) error) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var last error // of a try the deadline did not cut short
	for {
		err := try(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			if last == nil {
				last = err
			}
			return fmt.Errorf("%w (last try: %v)", ctx.Err(), last)
		}
		last = err
		select {
		case <-ctx.Done():
		case <-p.done:
			// Past the deadline the exit is the deadline's kill, which
			// the next round reports as such.
			if ctx.Err() == nil {
				return fmt.Errorf("%s exited: %v (last try: %v)", p.name, p.err, last)
			}
		case <-tick.C:
		}
	}
}

// Dial connects to addr for a probe and sets the connection's deadline to
// at most timeout from now, and never past the deadline of ctx. It returns
// context.DeadlineExceeded when no time is left, else the error of the
// dial or of SetDeadline.
func Dial(ctx context.Context, network, addr string, timeout time.Duration) (net.Conn, error) {
	limit := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(limit) {
		limit = d
	}
	left := time.Until(limit)
	if left <= 0 {
		return nil, context.DeadlineExceeded
	}
	c, err := net.DialTimeout(network, addr, left)
	if err != nil {
		return nil, err
	}
	if err := c.SetDeadline(limit); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Binary returns the path of the executable name, or "" when it is not
// installed. /usr/sbin and /usr/local/sbin are searched too because a
// normal user's PATH often lacks them, and daemons live there.
func Binary(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}
