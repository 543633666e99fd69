//go:build linux

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailrun/mailrun/cluster"
	"github.com/mailrun/mailrun/internal/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestBenchCluster is the figure of issue 12: the same campaign sent by a
// plain `mailrun send` (8 connections by default) and then, fresh copy and
// fresh journal, by a real `mailrun hub` process (its store on disk, so
// every write pays its fsync), real `mailrun worker` processes (two of 4
// connections each by default) and `mailrun send --cluster`, all against
// benchSink on this machine. `make bench-cluster` runs it:
//
//	MAILRUN_BENCH=1 MAILRUN_BIN=bin/mailrun BENCH_CLUSTER_N=20000 \
//	  go test -run '^TestBenchCluster$' -v -timeout 30m ./cmd/mailrun/
//
// It reports both rates and their ratio (as send prints them, and at the
// sink from its first message to its last), the hub's writes per second
// (read from its streams), the claim round trip measured by a probe
// beside the run and on the idle hub, and the CPU time and peak memory of
// every process. Like the other benchmarks it asserts correctness only
// (every recipient once); the "at least half the plain rate" is
// reported, not enforced. Knobs, read by this test only, to see how the
// rate grows with workers and what bounds it:
//
//   - BENCH_CLUSTER_STORE puts the hub's store in another folder (say
//     /dev/shm, to take the disk out);
//   - BENCH_CLUSTER_WORKERS, the number of workers (2);
//   - BENCH_CLUSTER_CONCURRENCY, each worker's connections (4);
//   - BENCH_CLUSTER_PLAIN_CONCURRENCY, the plain send's connections
//     (workers times concurrency);
//   - BENCH_SINK_DELAY, how long the sink holds each message's final
//     reply (say 20ms, for a real relay's latency; none);
//   - BENCH_CLUSTER_R3=1 replaces the hub by three clustered NATS servers
//     started in the test process (startBenchR3), so every bucket is kept
//     three times and each write waits for a quorum of two; their CPU
//     time is then the test's. BENCH_CLUSTER_R3=sync also has them sync
//     every write to disk, as the hub does.
func TestBenchCluster(t *testing.T) {
	if os.Getenv("MAILRUN_BENCH") == "1" && os.Getenv("BENCH_CLUSTER_N") == "" {
		t.Skip("set BENCH_CLUSTER_N (make bench-cluster) to run the cluster benchmark")
	}
	bin := benchSetup(t)
	n := benchN(t, "BENCH_CLUSTER_N", 20000)
	workers := benchN(t, "BENCH_CLUSTER_WORKERS", 2)
	workerConns := benchN(t, "BENCH_CLUSTER_CONCURRENCY", 4)
	plainConns := benchN(t, "BENCH_CLUSTER_PLAIN_CONCURRENCY", workers*workerConns)
	var delay time.Duration
	if s := os.Getenv("BENCH_SINK_DELAY"); s != "" {
		var err error
		if delay, err = time.ParseDuration(s); err != nil || delay < 0 {
			t.Fatalf("BENCH_SINK_DELAY=%q: want a duration such as 20ms", s)
		}
	}

	// Plain send.
	sink := startBenchSinkDelay(t, delay)
	dir := benchClusterCampaign(t, n, sink, plainConns)
	self := selfCPU()
	plain := benchExec(t, bin, "send", dir, "--yes")
	plainSelf := selfCPU() - self
	if plain.code != exitOK {
		t.Fatalf("send exit %d, want 0\n%s", plain.code, plain.log)
	}
	sink.wantOnce(t, n, plainConns, plain.log)
	plainSink, plainSpan := sink.rate()

	// The same campaign through a hub and the workers.
	sink = startBenchSinkDelay(t, delay)
	dir = benchClusterCampaign(t, n, sink, workerConns)
	store := t.TempDir()
	if s := os.Getenv("BENCH_CLUSTER_STORE"); s != "" {
		var err error
		if store, err = os.MkdirTemp(s, "mailrun-hub-"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(store) })
	}
	r3, r3sync := os.Getenv("BENCH_CLUSTER_R3") == "1", os.Getenv("BENCH_CLUSTER_R3") == "sync"
	r3 = r3 || r3sync
	var url, hubName string
	var hub *benchProc
	if r3 {
		url, hubName = startBenchR3(t, store, r3sync), "3 servers (R3)"
		if r3sync {
			hubName = "3 servers (R3, synced)"
		}
	} else {
		url, hubName = "nats://"+freeAddr(t), "hub"
		hub = benchStart(t, bin, "hub", "--listen", strings.TrimPrefix(url, "nats://"), "--store", store)
		hub.waitLog(t, "hub: listening on", 30*time.Second)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Minute)
	defer cancel()
	cn := openBench(ctx, t, url)
	defer cn.Close()
	if want := map[bool]int{false: 1, true: 3}[r3]; cn.Replicas() != want {
		t.Fatalf("replicas %d, want %d", cn.Replicas(), want)
	}
	nc, err := nats.Connect(url, nats.Timeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	var ws []*benchProc
	for i := range workers {
		ws = append(ws, benchStart(t, bin, "worker", url, "--name", fmt.Sprintf("bench-w%d", i+1),
			"--cache", t.TempDir(), "--concurrency", strconv.Itoa(workerConns), "--ack-wait", "30s"))
	}
	waitWorkers(ctx, t, cn, workers)
	// A worker waits a heartbeat and a quarter after joining before it
	// takes work (the others cut their share of the rate first): let that
	// pass, so the figure is the sending and not the start-up.
	time.Sleep(cluster.Heartbeat() * 3 / 2)

	streams := []string{"KV_mailrun_claims", "KV_mailrun_runs", "MAILRUN_WORK"}
	before := lastSeqs(ctx, t, js, streams)
	probeStop := make(chan struct{})
	probeDone := make(chan probeResult, 1)
	go func() { probeDone <- probeClaims(ctx, cn, "bench-probe-live", 50*time.Millisecond, 0, probeStop) }()
	self = selfCPU()
	coord := benchExec(t, bin, "send", dir, "--cluster", url, "--yes")
	clusterSelf := selfCPU() - self
	close(probeStop)
	live := <-probeDone
	after := lastSeqs(ctx, t, js, streams)
	if coord.code != exitOK {
		t.Fatalf("send --cluster exit %d, want 0\n%s", coord.code, coord.log)
	}
	sink.wantOnce(t, n, workers*workerConns, coord.log)
	clusterSink, clusterSpan := sink.rate()

	idle := probeClaims(ctx, cn, "bench-probe-idle", 0, 300, nil)
	var wruns []benchRun
	for _, w := range ws {
		wruns = append(wruns, w.stop(t))
	}
	var hubRun benchRun
	if hub != nil {
		hubRun = hub.stop(t)
	}

	// The figures.
	plainRate, plainTook := sendRate(plain)
	clusterRate, clusterTook := sendRate(coord)
	claimWrites := after[0] - before[0] - live.writes
	otherWrites := after[1] - before[1] + after[2] - before[2]
	secs := clusterTook.Seconds()
	benchReport(t, "cluster bench: %d recipients, no rate limit, benchSink on loopback (reply delay %s), %d CPUs, %s, store %s", n, delay, runtime.NumCPU(), hubName, store)
	benchReport(t, "  plain send   (%d conns):          %7.0f msg/s  (%s in send, %s wall)", plainConns, plainRate, plainTook.Round(time.Millisecond), plain.elapsed.Round(time.Millisecond))
	benchReport(t, "  cluster send (%d workers x %d):   %7.0f msg/s  (%s in send, %s wall)", workers, workerConns, clusterRate, clusterTook.Round(time.Millisecond), coord.elapsed.Round(time.Millisecond))
	benchReport(t, "  ratio cluster/plain: %.2f (issue 12 wants >= 0.50)", clusterRate/plainRate)
	benchReport(t, "  at the sink, first to last message: plain %.0f msg/s (%s), cluster %.0f msg/s (%s), ratio %.2f",
		plainSink, plainSpan.Round(time.Millisecond), clusterSink, clusterSpan.Round(time.Millisecond), clusterSink/plainSink)
	benchReport(t, "  %s writes: %d claim-bucket writes (%.2f per recipient) = %.0f/s; runs bucket + work queue %d = %.0f/s",
		hubName, claimWrites, float64(claimWrites)/float64(n), float64(claimWrites)/secs, otherWrites, float64(otherWrites)/secs)
	acked := "synced"
	if r3 {
		acked = "quorum"
	}
	benchReport(t, "  claim round trip (create, %s): during the run %s, idle %s", acked, live.claim, idle.claim)
	benchReport(t, "  settle round trip (update, %s): during the run %s, idle %s", acked, live.settle, idle.settle)
	benchReport(t, "  %-36s %7s %7s %9s %6s %8s", "process", "CPU s", "sys s", "CPU/msg", "CPU %", "peak MB")
	row := func(name string, cpu, sys, wall time.Duration, peak float64) {
		sysText, peakText := "-", "-"
		if sys > 0 {
			sysText = fmt.Sprintf("%.2f", sys.Seconds())
		}
		if peak > 0 {
			peakText = fmt.Sprintf("%.1f", peak)
		}
		benchReport(t, "  %-36s %7.2f %7s %7.0fµs %5.0f%% %8s", name, cpu.Seconds(), sysText,
			float64(cpu.Microseconds())/float64(n), 100*cpu.Seconds()/wall.Seconds(), peakText)
	}
	row("plain: mailrun send", plain.cpu, 0, plain.elapsed, plain.peakMB)
	row("plain: test (sink)", plainSelf, 0, plain.elapsed, 0)
	if hub != nil {
		row("cluster: hub", hubRun.cpu, hub.sys, coord.elapsed, hubRun.peakMB)
	}
	for i, w := range wruns {
		row(fmt.Sprintf("cluster: worker %d", i+1), w.cpu, ws[i].sys, coord.elapsed, w.peakMB)
	}
	row("cluster: coordinator", coord.cpu, 0, coord.elapsed, coord.peakMB)
	selfName := "cluster: test (sink+probe)"
	if r3 {
		selfName = "cluster: test (3 servers+sink+probe)"
	}
	row(selfName, clusterSelf, 0, coord.elapsed, 0)
	var total time.Duration
	for _, w := range wruns {
		total += w.cpu
	}
	total += hubRun.cpu + coord.cpu + clusterSelf
	benchReport(t, "  CPU per message: plain %.0fµs, cluster %.0fµs (hub and workers include their idle time before and after the send)",
		float64((plain.cpu+plainSelf).Microseconds())/float64(n), float64(total.Microseconds())/float64(n))
}

// startBenchR3 starts three clustered NATS servers (natstest.Start) with
// their stores under root. They keep nats-server's defaults, as a team's
// own cluster would: a write is acknowledged once a quorum of two holds
// it, not synced each time (the hub syncs each, having no replica),
// unless sync.
func startBenchR3(t *testing.T, root string, sync bool) string {
	t.Helper()
	urls, _ := natstest.Start(t, root, sync)
	return urls
}

// openBench opens the probe's connection to url, retrying for up to 60
// seconds: a cluster elects its JetStream leader before it creates the
// buckets.
func openBench(ctx context.Context, t *testing.T, url string) *cluster.Conn {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cn, err := cluster.Open(octx, url, cluster.Options{Name: "mailrun bench probe"})
		cancel()
		if err == nil {
			return cn
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ready within 60s: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// benchClusterCampaign is benchCampaign sending to sink with conns
// connections and no rate limit.
func benchClusterCampaign(t *testing.T, n int, sink *benchSink, conns int) string {
	t.Helper()
	dir := benchCampaign(t, n)
	host, port := sink.addr()
	appendFile(t, filepath.Join(dir, "campaign.yaml"), fmt.Sprintf(`
smtp:
  host: %s
  port: %d
  security: none
send:
  concurrency: %d
`, host, port, conns))
	return dir
}

// wantOnce fails the test unless the sink got exactly one message for
// each of n recipients on at most conns simultaneous connections.
func (s *benchSink) wantOnce(t *testing.T, n, conns int, log string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for a, k := range s.deliveries {
		if k != 1 {
			t.Errorf("<%s> got the message %d times", a, k)
		}
	}
	if s.messages != n || len(s.deliveries) != n {
		t.Fatalf("the sink got %d messages for %d recipients, want %d for %d\n%s", s.messages, len(s.deliveries), n, n, log)
	}
	if s.max > conns {
		t.Errorf("the sink saw %d simultaneous connections, want at most %d", s.max, conns)
	}
}

// summaryRe matches the summary line of send and its duration and rate.
var summaryRe = regexp.MustCompile(`(?m)^send: \d+ sent, .*; ([^,;]+), ([0-9.]+) msg/s`)

// sendRate is the rate and the duration the summary line of r reports:
// the send itself, without the process's start-up and plan.
func sendRate(r benchRun) (float64, time.Duration) {
	m := summaryRe.FindAllStringSubmatch(r.log, -1)
	if m == nil {
		return 0, r.elapsed
	}
	last := m[len(m)-1]
	d, err1 := time.ParseDuration(last[1])
	rate, err2 := strconv.ParseFloat(last[2], 64)
	if err1 != nil || err2 != nil {
		return 0, r.elapsed
	}
	return rate, d
}

// benchProc is mailrun running in the background for the whole of a
// benchmark (the hub, a worker), with its peak memory watched as
// benchExec watches it.
type benchProc struct {
	cmd      *exec.Cmd
	log      string
	done     chan struct{}
	peak     chan int64
	stopPeak chan struct{}
	sys      time.Duration // system CPU time, once stopped: the hub's fsyncs show here
}

// benchStart starts mailrun with args; it is killed when the test ends if
// stop did not end it before.
func benchStart(t *testing.T, bin string, args ...string) *benchProc {
	t.Helper()
	p := &benchProc{log: filepath.Join(t.TempDir(), args[0]+".log"), done: make(chan struct{}),
		peak: make(chan int64, 1), stopPeak: make(chan struct{})}
	logf, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	go func() {
		var peak int64
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if kb := vmHWM(p.cmd.Process.Pid); kb > peak {
				peak = kb
			}
			select {
			case <-p.stopPeak:
				p.peak <- peak
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitLog waits up to d for the process to print want.
func (p *benchProc) waitLog(t *testing.T, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		b, _ := os.ReadFile(p.log)
		if strings.Contains(string(b), want) {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s ended (%v) before printing %q:\n%s", p.cmd.Args[1], p.cmd.ProcessState, want, b)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not print %q within %s:\n%s", p.cmd.Args[1], want, d, b)
		}
	}
}

// stop interrupts the process, as Ctrl-C does, waits up to 30 seconds for
// it to end and returns its CPU time and peak memory.
func (p *benchProc) stop(t *testing.T) benchRun {
	t.Helper()
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not stop within 30s of an interrupt", p.cmd.Args[1])
	}
	close(p.stopPeak)
	r := benchRun{code: p.cmd.ProcessState.ExitCode(), peakMB: float64(<-p.peak) / 1024}
	r.cpu = p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
	p.sys = p.cmd.ProcessState.SystemTime()
	if b, err := os.ReadFile(p.log); err == nil {
		r.log = string(b[max(0, len(b)-4096):])
	}
	if r.code != exitOK {
		t.Errorf("%s exit %d, want 0\n%s", p.cmd.Args[1], r.code, r.log)
	}
	return r
}

// freeAddr is a loopback address with a port free now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitWorkers waits up to 30 seconds for n live workers.
func waitWorkers(ctx context.Context, t *testing.T, cn *cluster.Conn, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ws, err := cn.Workers(ctx)
		if err == nil && len(ws) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d workers live after 30s, want %d (%v)", len(ws), n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lastSeqs reads the last sequence of each stream: how many writes it took.
func lastSeqs(ctx context.Context, t *testing.T, js jetstream.JetStream, names []string) []uint64 {
	t.Helper()
	var out []uint64
	for _, name := range names {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		out = append(out, info.State.LastSeq)
	}
	return out
}

// probeResult is what probeClaims measured.
type probeResult struct {
	claim, settle latency
	writes        uint64
}

// latency is a set of round trips, printed as mean, median and 99th
// percentile.
type latency []time.Duration

func (l latency) String() string {
	if len(l) == 0 {
		return "no samples"
	}
	s := slices.Clone(l)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }
	return fmt.Sprintf("mean %s p50 %s p99 %s (n=%d)", ms(sum/time.Duration(len(s))), ms(s[len(s)/2]), ms(s[len(s)*99/100]), len(s))
}

// probeClaims claims and settles recipients of a campaign of its own the
// way a worker does (cluster.Conn.Claim, then Settle), one at a time,
// every interval until stop is closed, or count times back to back, and
// times each round trip. It uses the production calls only, so the
// figure is what a worker waits for before each message's first SMTP
// command.
func probeClaims(ctx context.Context, cn *cluster.Conn, name string, every time.Duration, count int, stop <-chan struct{}) probeResult {
	var r probeResult
	ck := cluster.CampaignKey(name)
	for i := 0; count == 0 || i < count; i++ {
		if stop != nil {
			select {
			case <-stop:
				return r
			case <-time.After(every):
			}
		}
		addr := fmt.Sprintf("probe%07d@example.org", i)
		c := cluster.Claim{Worker: "probe", Token: strconv.Itoa(i), Row: i + 2, Email: addr, Time: time.Now().UTC()}
		start := time.Now()
		rev, err := cn.Claim(ctx, ck, addr, c, cluster.Over{})
		if err != nil {
			return r
		}
		r.claim = append(r.claim, time.Since(start))
		r.writes++
		c.State = cluster.Sent
		start = time.Now()
		if err := cn.Settle(ctx, ck, addr, rev, c); err != nil {
			return r
		}
		r.settle = append(r.settle, time.Since(start))
		r.writes++
	}
	return r
}

// selfCPU is the CPU time the test process used so far: the sink's, and
// the probe's and the watchers' besides.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
