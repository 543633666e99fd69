package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/cluster"
	"github.com/mailrun/mailrun/internal/postfixtest"
	"github.com/mailrun/mailrun/internal/smtptest"
	"github.com/mailrun/mailrun/journal"
	"github.com/mailrun/mailrun/mailing"
)

// TestClusterKill9 runs a campaign on three real worker processes, kills
// one with kill -9 and the coordinator too in the middle, reruns the
// coordinator, and checks the promises: nobody mailed twice,
// nobody lost, at most the dead worker's concurrency unknown, and the
// campaign's rate held by the cluster as a whole.
func TestClusterKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about half a minute")
	}
	const (
		n           = 300
		rate        = 20 // send.rate: 20/s for the whole cluster
		burst       = 10 // its default at 10/s and above
		concurrency = 4
	)
	// The relay holds each reply 300 ms, so a killed worker has messages
	// on their way: they are the unknowns the promise bounds.
	e := newSendEnv(t, "newsletter", smtptest.Options{DataDelay: 300 * time.Millisecond},
		fmt.Sprintf("  rate: %d/s\n  concurrency: %d\n", rate, concurrency))
	addrs := writeList(t, e.dir, n)
	hub, err := cluster.StartHub(cluster.HubConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hub.Close)

	var workers []*proc
	for i := range 3 {
		workers = append(workers, start(t, "worker", hub.URL(), "--name", fmt.Sprintf("w%d", i+1),
			"--cache", t.TempDir(), "--concurrency", fmt.Sprint(concurrency), "--ack-wait", "4s"))
	}
	coord := start(t, "send", e.dir, "--cluster", hub.URL(), "--yes")
	coord.waitMessages(t, e.srv, 60)
	if err := workers[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	workers[0].wait(t)
	coord.waitMessages(t, e.srv, 120)
	if err := coord.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	coord.wait(t)

	coord = start(t, "send", e.dir, "--cluster", hub.URL(), "--yes")
	code := coord.waitLong(t, time.Minute)
	if code != exitOK && code != exitFailed {
		t.Fatalf("coordinator rerun: exit %d\n%s\n%s", code, coord.out.String(), coord.errOut.String())
	}

	// Nobody twice; nobody lost but the dead worker's unknowns.
	unknown := unknowns(t, e.journalPath())
	if len(unknown) > concurrency {
		t.Errorf("%d unknown, want at most %d (the killed worker's connections)", len(unknown), concurrency)
	}
	if (code == exitFailed) != (len(unknown) > 0) {
		t.Errorf("exit %d with %d unknown", code, len(unknown))
	}
	for _, a := range addrs {
		got := e.srv.Deliveries(a)
		switch {
		case got > 1:
			t.Errorf("<%s>: %d deliveries", a, got)
		case got == 0 && !unknown[campaign.AddrKey(a)]:
			t.Errorf("<%s>: never delivered and not unknown", a)
		}
	}
	r := mailrun(t, nil, "status", e.dir, "--cluster", hub.URL())
	r.want(t, exitOK, "status --cluster")
	if !strings.Contains(r.stdout, fmt.Sprintf("%d unknown", len(unknown))) || !strings.Contains(r.stdout, "pass 1 done") {
		t.Errorf("status --cluster:\n%s", r.stdout)
	}

	// The rate is the whole cluster's: any 10 s holds at most rate*10+burst.
	var at []time.Time
	for _, m := range e.srv.Messages() {
		at = append(at, m.At)
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	most, j := 0, 0
	for i := range at {
		for at[i].Sub(at[j]) >= 10*time.Second {
			j++
		}
		most = max(most, i-j+1)
	}
	if most > rate*10+burst {
		t.Errorf("%d messages in 10 s, want at most %d", most, rate*10+burst)
	}
	t.Logf("%d delivered, %d unknown, at most %d in any 10 s, over %s", len(at), len(unknown), most, at[len(at)-1].Sub(at[0]).Round(time.Millisecond))
}

// writeList writes n recipients in the newsletter's columns into dir's
// recipients.csv and returns their addresses.
func writeList(t *testing.T, dir string, n int) []string {
	t.Helper()
	var b strings.Builder
	b.WriteString("email,first_name,last_name,id,plan\n")
	addrs := make([]string, n)
	for i := range n {
		addrs[i] = fmt.Sprintf("user%03d@example.org", i)
		fmt.Fprintf(&b, "%s,User,No%d,id%d,pro\n", addrs[i], i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "recipients.csv"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return addrs
}

// waitLong waits up to d for the process to end and returns its exit code.
func (p *proc) waitLong(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("mailrun did not end within %s\n%s\n%s", d, p.out.String(), p.errOut.String())
		return 0
	}
}

// TestClusterWorkerBadPassword: of two worker processes, the one whose
// environment holds a wrong password stops and says so (exit 2, no
// password printed); the other sends everyone, the recipients the first
// had claimed included.
func TestClusterWorkerBadPassword(t *testing.T) {
	e := newSendEnv(t, "newsletter", smtptest.Options{Auth: true}, "  concurrency: 2\n")
	addrs := writeList(t, e.dir, 120)
	hub, err := cluster.StartHub(cluster.HubConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hub.Close)
	bad := startEnv(t, []string{testPasswordEnv + "=wrong-" + testPassword}, "worker", hub.URL(), "--name", "bad", "--cache", t.TempDir(), "--ack-wait", "4s")
	time.Sleep(cluster.Heartbeat() * 2) // it waits a heartbeat before taking work
	sent := make(chan result, 1)
	go func() { sent <- mailrun(t, nil, "send", e.dir, "--cluster", hub.URL(), "--yes") }()
	if code := bad.waitLong(t, time.Minute); code != exitUsage {
		t.Fatalf("bad worker: exit %d, want %d\n%s", code, exitUsage, bad.errOut.String())
	}
	if !strings.Contains(bad.errOut.String(), "worker stopped: the relay refused this worker") {
		t.Errorf("bad worker's stderr:\n%s", bad.errOut.String())
	}
	noSecrets(t, result{stdout: bad.out.String(), stderr: bad.errOut.String()}, e.srv.Username())
	start(t, "worker", hub.URL(), "--name", "good", "--cache", t.TempDir(), "--ack-wait", "4s")
	r := <-sent
	r.want(t, exitOK, "send --cluster")
	for _, a := range addrs {
		if n := e.srv.Deliveries(a); n != 1 {
			t.Errorf("<%s>: %d deliveries, want 1", a, n)
		}
	}
	// report --cluster reads the cluster's state, in the journal report's
	// format: one row per recipient, all sent.
	r = mailrun(t, nil, "report", e.dir, "--cluster", hub.URL())
	r.want(t, exitOK, "report --cluster")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != len(addrs)+1 || !strings.HasPrefix(lines[0], "row,email,status,") {
		t.Fatalf("report --cluster: %d lines, want %d\n%s", len(lines), len(addrs)+1, r.stdout)
	}
	for i, l := range lines[1:] {
		if want := fmt.Sprintf("%d,%s,sent,", i+2, addrs[i]); !strings.HasPrefix(l, want) {
			t.Errorf("report line %d: %q, want it to start %q", i+1, l, want)
		}
	}
}

// TestClusterPostfix: two worker processes send through a real Postfix
// (STARTTLS, SASL, the password from each worker's environment): every
// valid user gets one message, the unknown ones fail with Postfix's 550
// 5.1.1, and the local journal and report --cluster agree.
func TestClusterPostfix(t *testing.T) {
	pf := postfixtest.Start(t)
	var rows [][]string
	valid := map[string]bool{}
	for i := range 30 {
		addr := pf.Users[i]
		if i%6 == 5 {
			addr = fmt.Sprintf("nobody%02d@%s", i, postfixtest.Domain)
		} else {
			valid[addr] = true
		}
		rows = append(rows, []string{addr, "Reader", fmt.Sprintf("N%02d", i), fmt.Sprintf("r%02d", i), "free"})
	}
	dir := postfixCampaign(t, pf, rows, true, "  concurrency: 2\n")
	// Workers take the password from their environment, never a file.
	replaceInFile(t, filepath.Join(dir, "campaign.yaml"), "  password_file: postfix-password\n", "  password_env: "+testPasswordEnv+"\n")
	hub, err := cluster.StartHub(cluster.HubConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hub.Close)
	for i := range 2 {
		startEnv(t, []string{testPasswordEnv + "=" + pf.Password}, "worker", hub.URL(), "--name", fmt.Sprintf("pf%d", i), "--cache", t.TempDir())
	}
	r := mailrun(t, nil, "send", dir, "--cluster", hub.URL(), "--yes")
	r.want(t, exitFailed, "send --cluster with unknown users")
	for addr := range valid {
		if n := pf.Count(t, addr); n != 1 {
			t.Errorf("<%s>: %d messages, want 1", addr, n)
		}
	}
	rep, err := mailing.Latest(filepath.Join(dir, "november-news.journal"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Recipients) != len(rows) {
		t.Errorf("journal: %d recipients, want %d", len(rep.Recipients), len(rows))
	}
	for _, en := range rep.Recipients {
		switch {
		case valid[en.Email] && en.Status != journal.Sent:
			t.Errorf("<%s>: %s, want sent: %s", en.Email, en.Status, en.Error)
		case !valid[en.Email] && (en.Status != journal.Failed || en.Reply == nil || en.Reply.Code != 550):
			t.Errorf("<%s>: %s %+v, want failed with 550", en.Email, en.Status, en.Reply)
		}
	}
	r = mailrun(t, nil, "report", dir, "--cluster", hub.URL())
	r.want(t, exitOK, "report --cluster")
	if got := strings.Count(r.stdout, ",sent,"); got != len(valid) {
		t.Errorf("report --cluster: %d sent, want %d\n%s", got, len(valid), r.stdout)
	}
}
