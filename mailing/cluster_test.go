package mailing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/cluster"
	"github.com/mailrun/mailrun/internal/smtptest"
	"github.com/mailrun/mailrun/journal"
)

// clusterEnv is a campaign (runEnv) with an in-process hub.
type clusterEnv struct {
	*runEnv
	hub *cluster.Hub
}

func newClusterEnv(t *testing.T, opt smtptest.Options, send string) *clusterEnv {
	t.Helper()
	e := newRunEnv(t, "newsletter", opt, send)
	h, err := cluster.StartHub(cluster.HubConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return &clusterEnv{runEnv: e, hub: h}
}

// conn opens a client; ackWait is the batches' ack wait.
func (e *clusterEnv) conn(ackWait time.Duration) *cluster.Conn {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cn, err := cluster.Open(ctx, e.hub.URL(), cluster.Options{Name: e.t.Name(), AckWait: ackWait})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(cn.Close)
	return cn
}

// workers starts n in-process workers, stopped and awaited at cleanup;
// their errors come back on the returned function.
func (e *clusterEnv) workers(n int, o WorkerOptions) func() []error {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := range n {
		cn := e.conn(3 * time.Second)
		wo := o
		if wo.Name == "" {
			wo.Name = fmt.Sprintf("w%d", i+1)
		}
		wo.Cache = e.t.TempDir()
		if wo.Out == nil {
			wo.Out = testWriter{e.t}
		}
		wg.Go(func() {
			if err := Work(ctx, cn, wo); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	stop := func() []error {
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return errs
	}
	e.t.Cleanup(func() { stop() })
	return stop
}

// coordinate runs the coordinator to its end, within a minute.
func (e *clusterEnv) coordinate(opts SendOptions) (*SendSummary, string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	opts.Out = &out
	sum, err := Coordinate(ctx, e.campaign(), e.conn(0), opts, ClusterOptions{Poll: 100 * time.Millisecond})
	if err != nil {
		e.t.Fatalf("Coordinate: %v\n%s", err, out.String())
	}
	return sum, out.String()
}

// TestClusterSendsEachOnce: two workers send a list of four batches, each
// recipient once; the local journal holds every outcome; a coordinator
// rerun, from a machine without the journal too, sends nobody again.
func TestClusterSendsEachOnce(t *testing.T) {
	e := newClusterEnv(t, smtptest.Options{}, "")
	addrs := e.generatedAddrs(3*BatchSize + 7)
	e.workers(2, WorkerOptions{})
	sum, out := e.coordinate(SendOptions{})
	if sum.Sent != len(addrs) || sum.Failed+sum.Deferred+sum.Unknown != 0 {
		t.Fatalf("summary %+v\n%s", sum, out)
	}
	e.wantDeliveries(allOf(addrs, 1))
	e.wantStatus(allOf(addrs, journal.Sent))

	sum, _ = e.coordinate(SendOptions{Journal: t.TempDir() + "/elsewhere.journal"})
	if sum.Sent != 0 || sum.Previously != len(addrs) {
		t.Fatalf("rerun elsewhere: %+v", sum)
	}
	e.wantDeliveries(allOf(addrs, 1))
}

// TestClusterRedeliveredBatch: a worker takes a batch, claims two of its
// recipients and dies. After the ack wait another worker gets the batch
// and sends everyone else; the two stay unsent and are recorded unknown.
func TestClusterRedeliveredBatch(t *testing.T) {
	e := newClusterEnv(t, smtptest.Options{}, "")
	addrs := e.generatedAddrs(10)
	dead := e.conn(3 * time.Second)

	// The coordinator queues the work; the dead worker takes it first.
	var sum *SendSummary
	done := make(chan struct{})
	go func() {
		defer close(done)
		sum, _ = e.coordinate(SendOptions{})
	}()
	var b *cluster.Batch
	for deadline := time.Now().Add(30 * time.Second); b == nil && time.Now().Before(deadline); {
		var err error
		if b, err = dead.Next(context.Background(), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if b == nil {
		t.Fatal("no batch queued")
	}
	ck := cluster.CampaignKey(e.campaign().Name)
	for _, a := range addrs[:2] {
		if _, err := dead.Claim(context.Background(), ck, campaign.AddrKey(a), cluster.Claim{Worker: "dead", Token: "t", Email: a}, cluster.Over{}); err != nil {
			t.Fatal(err)
		}
	}
	e.workers(1, WorkerOptions{})
	<-done
	if sum == nil || sum.Sent != 8 || sum.Unknown != 2 {
		t.Fatalf("summary %+v", sum)
	}
	want := allOf(addrs[2:], 1)
	want[addrs[0]], want[addrs[1]] = 0, 0
	e.wantDeliveries(want)
	e.wantStatus(map[string]journal.Status{addrs[0]: journal.Unknown, addrs[1]: journal.Unknown, addrs[2]: journal.Sent})
}

// TestClusterDeferredNextPass: a recipient the relay defers through every
// retry is deferred after the first pass; the next coordinator run sends
// it, and only it.
func TestClusterDeferredNextPass(t *testing.T) {
	e := newClusterEnv(t, smtptest.Options{}, "  retries: 1\n")
	addrs := e.generatedAddrs(5)
	e.srv.RejectRcptTimes(addrs[3], 1, 451, "4.7.1", "greylisted")
	e.workers(2, WorkerOptions{})
	sum, _ := e.coordinate(SendOptions{})
	if sum.Sent != 4 || sum.Deferred != 1 {
		t.Fatalf("first pass: %+v", sum)
	}
	sum, _ = e.coordinate(SendOptions{})
	if sum.Sent != 1 || sum.Previously != 4 {
		t.Fatalf("second pass: %+v", sum)
	}
	e.wantDeliveries(allOf(addrs, 1))
	e.wantStatus(allOf(addrs, journal.Sent))
}

// TestClusterWorkerLoginRefused: a worker whose relay refuses its login
// stops and says so; the other sends everyone, the recipient the first
// had claimed included.
func TestClusterWorkerLoginRefused(t *testing.T) {
	e := newClusterEnv(t, smtptest.Options{Auth: true}, "")
	addrs := e.generatedAddrs(2*BatchSize + 3)
	badErrs := e.workers(1, WorkerOptions{Name: "bad", SMTP: fmt.Sprintf("smtp://intruder@%s?security=none", e.srv.Addr())})
	// Let the bad worker take the first batch, so its refusal is tested.
	time.Sleep(cluster.Heartbeat())
	e.workers(1, WorkerOptions{Name: "good"})
	sum, _ := e.coordinate(SendOptions{})
	if sum.Sent != len(addrs) {
		t.Fatalf("summary %+v", sum)
	}
	e.wantDeliveries(allOf(addrs, 1))
	errs := badErrs()
	var we *WorkerError
	if len(errs) != 1 || !errors.As(errs[0], &we) {
		t.Fatalf("bad worker: %v, want a *WorkerError", errs)
	}
}

// TestClusterHubRestart: the hub stops in the middle of a run and comes
// back on its store; the workers and the coordinator go on, and every
// recipient is delivered exactly once.
func TestClusterHubRestart(t *testing.T) {
	e := newClusterEnv(t, smtptest.Options{}, "  rate: 50/s\n")
	addrs := e.generatedAddrs(150)
	store := t.TempDir()
	e.hub.Close()
	h, err := cluster.StartHub(cluster.HubConfig{Listen: "127.0.0.1:0", StoreDir: store})
	if err != nil {
		t.Fatal(err)
	}
	e.hub = h
	addr := strings.TrimPrefix(h.URL(), "nats://")
	e.workers(2, WorkerOptions{})
	done := make(chan *SendSummary, 1)
	go func() {
		sum, _ := e.coordinate(SendOptions{})
		done <- sum
	}()
	for deadline := time.Now().Add(30 * time.Second); len(e.srv.Messages()) < 30; {
		if time.Now().After(deadline) {
			t.Fatal("no 30 messages within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.Close()
	time.Sleep(time.Second)
	h2, err := cluster.StartHub(cluster.HubConfig{Listen: addr, StoreDir: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h2.Close)
	var sum *SendSummary
	select {
	case sum = <-done:
	case <-time.After(90 * time.Second):
		t.Fatal("the run did not end within 90 s of the hub's return")
	}
	if sum == nil || sum.Sent+sum.Unknown != len(addrs) {
		t.Fatalf("summary %+v", sum)
	}
	for _, a := range addrs {
		if n := e.srv.Deliveries(a); n > 1 {
			t.Errorf("<%s>: %d deliveries", a, n)
		}
	}
	t.Logf("%+v", sum)
}

// testWriter logs what a worker prints, for a failing test to show.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestClusterWorkerRelayDown: a worker whose relay cannot be reached
// pauses and gives its batch back instead of stopping; the other worker
// sends everyone, once each.
func TestClusterWorkerRelayDown(t *testing.T) {
	e := newClusterEnv(t, smtptest.Options{}, "")
	addrs := e.generatedAddrs(2*BatchSize + 3)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	var out lockedLog
	awayErrs := e.workers(1, WorkerOptions{Name: "away", SMTP: "smtp://" + closed + "?security=none", RelayPause: time.Second, Out: &out})
	time.Sleep(cluster.Heartbeat()) // the away worker takes the first batch
	e.workers(1, WorkerOptions{Name: "good"})
	sum, _ := e.coordinate(SendOptions{})
	if sum.Sent != len(addrs) {
		t.Fatalf("summary %+v\naway worker:\n%s", sum, out.String())
	}
	e.wantDeliveries(allOf(addrs, 1))
	if errs := awayErrs(); len(errs) != 0 {
		t.Errorf("the worker whose relay is away stopped: %v", errs)
	}
	if !strings.Contains(out.String(), "relay unreachable, retrying in 1s") {
		t.Errorf("the away worker did not say it pauses:\n%s", out.String())
	}
}

// lockedLog collects a worker's lines.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestClusterRetryFailed: a recipient the relay refused is failed and
// stays so on a plain rerun; a rerun with RetryFailed sends it, once.
func TestClusterRetryFailed(t *testing.T) {
	e := newClusterEnv(t, smtptest.Options{}, "")
	addrs := e.generatedAddrs(4)
	e.srv.RejectRcptTimes(addrs[1], 1, 550, "5.1.1", "no such user")
	e.workers(1, WorkerOptions{})
	if sum, _ := e.coordinate(SendOptions{}); sum.Sent != 3 || sum.Failed != 1 {
		t.Fatalf("first run: %+v", sum)
	}
	if sum, _ := e.coordinate(SendOptions{}); sum.Sent != 0 || sum.Previously != 4 {
		t.Fatalf("plain rerun: %+v", sum)
	}
	if sum, _ := e.coordinate(SendOptions{RetryFailed: true}); sum.Sent != 1 {
		t.Fatalf("rerun with RetryFailed: %+v", sum)
	}
	e.wantDeliveries(allOf(addrs, 1))
	e.wantStatus(allOf(addrs, journal.Sent))
}
