package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/cluster"
	"github.com/mailrun/mailrun/journal"
	"github.com/mailrun/mailrun/mailing"
)

// hubPasswordEnv holds the password a hub beyond loopback requires of its
// clients; they give it in cluster.PasswordEnv.
const hubPasswordEnv = "MAILRUN_HUB_PASSWORD"

func cmdHub(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hub", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:4222", "`HOST:PORT` to listen on; beyond loopback it needs --tls-cert, --tls-key and "+hubPasswordEnv)
	store := fs.String("store", "mailrun-hub", "`DIR` for JetStream's files: keep it, a restarted hub continues from it")
	cert := fs.String("tls-cert", "", "TLS certificate `FILE` (PEM)")
	key := fs.String("tls-key", "", "TLS key `FILE` (PEM)")
	user := fs.String("user", cluster.DefaultUser, "the `NAME` clients log in with, when "+hubPasswordEnv+" is set")
	if _, code, ok := parse(fs, args, 0, stdout, stderr); !ok {
		return code
	}
	cfg := cluster.HubConfig{Listen: *listen, StoreDir: *store}
	if pw := os.Getenv(hubPasswordEnv); pw != "" {
		cfg.User, cfg.Password = *user, pw
	}
	if *cert != "" || *key != "" {
		pair, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			fmt.Fprintln(stderr, "mailrun hub: --tls-cert/--tls-key:", errText(err))
			return exitUsage
		}
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	h, err := cluster.StartHub(cfg)
	if err != nil {
		if errors.Is(err, cluster.ErrExposed) {
			err = fmt.Errorf("%w: give --tls-cert, --tls-key and the password in %s", err, hubPasswordEnv)
		}
		fmt.Fprintln(stderr, "mailrun hub:", errText(err))
		return exitUsage
	}
	defer h.Close()
	fmt.Fprintf(stdout, "hub: listening on %s, JetStream in %s, every write synced to disk\n", h.URL(), *store)
	fmt.Fprintf(stdout, "hub: start workers with: mailrun worker %s\n", h.URL())
	<-ctx.Done()
	fmt.Fprintln(stdout, "hub: stopping")
	return exitOK
}

func cmdWorker(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	host, _ := os.Hostname()
	o := mailing.WorkerOptions{}
	fs.IntVar(&o.Concurrency, "concurrency", 0, "`N` connections to the relay (default: the campaign's send.concurrency)")
	fs.StringVar(&o.SMTP, "smtp", "", "relay `URL` of this worker, overriding the campaign's smtp section")
	fs.StringVar(&o.Name, "name", fmt.Sprintf("%s-%d", host, os.Getpid()), "this worker's `NAME` in the cluster")
	fs.StringVar(&o.Cache, "cache", "", "`DIR` the campaign files are fetched into (default: the user cache folder)")
	fs.DurationVar(&o.Idle, "idle", 0, "stop after `DURATION` without work (default: run until stopped)")
	debug := fs.Bool("debug", false, "print the SMTP conversation to stderr (AUTH redacted)")
	ackWait := fs.Duration("ack-wait", 0, "how long a silent worker's batch waits before another takes it, for every worker (default: as set, or 30s)")
	pos, code, ok := parse(fs, args, 1, stdout, stderr)
	if !ok {
		return code
	}
	stderr = &lockedWriter{w: stderr}
	o.Out = stderr
	if *debug {
		o.Trace = stderr
	}
	cn, ok := dialCluster(ctx, pos[0], "worker "+o.Name, "worker", *ackWait, stderr)
	if !ok {
		return exitUsage
	}
	defer cn.Close()
	fmt.Fprintf(stdout, "worker %s: taking work from %s\n", o.Name, pos[0])
	err := mailing.Work(ctx, cn, o)
	var we *mailing.WorkerError
	switch {
	case errors.As(err, &we):
		fmt.Fprintln(stderr, "mailrun worker:", errText(err))
		return exitUsage
	case err != nil:
		fmt.Fprintln(stderr, "mailrun worker:", errText(err))
		return exitFailed
	}
	fmt.Fprintf(stdout, "worker %s: stopped\n", o.Name)
	return exitOK
}

// dialCluster connects to the cluster at url, giving up after 30 seconds.
func dialCluster(ctx context.Context, url, name, cmd string, ackWait time.Duration, stderr io.Writer) (*cluster.Conn, bool) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cn, err := cluster.Open(cctx, url, cluster.Options{Name: "mailrun " + name, AckWait: ackWait})
	if err != nil {
		fmt.Fprintf(stderr, "mailrun %s: %s\n", cmd, errText(err))
		return nil, false
	}
	return cn, true
}

// clusterSend is send --cluster: plan and ask as send does, then
// coordinate the workers.
func clusterSend(ctx context.Context, c *campaign.Campaign, f *sendFlags, stdin io.Reader, stdout, stderr io.Writer, tty bool) int {
	switch {
	case f.testAddr != "":
		fmt.Fprintln(stderr, "mailrun send: --test sends from this machine: leave out --cluster")
		return exitUsage
	case f.smtpURL != "" || f.debug:
		fmt.Fprintln(stderr, "mailrun send: with --cluster the workers send: give --smtp and --debug to mailrun worker")
		return exitUsage
	case f.limit > 0:
		fmt.Fprintln(stderr, "mailrun send: --limit is not available with --cluster")
		return exitUsage
	}
	cn, ok := dialCluster(ctx, f.cluster, "coordinator", "send", 0, stderr)
	if !ok {
		return exitUsage
	}
	defer cn.Close()
	ws, _ := cn.Workers(ctx)
	rate := "no limit"
	if c.Send.Rate != "" {
		rate = c.Send.Rate + " in all"
	}
	relay := fmt.Sprintf("cluster %s (%d workers live now, rate %s, writes kept on %d server(s))", f.cluster, len(ws), rate, cn.Replicas())
	pl, opts, code, ok := planAndAsk(ctx, c, f, relay, stdin, stdout, stderr)
	if !ok {
		return code
	}
	return sendRun(ctx, pl.ToSend, stdout, stderr, tty, opts, func(ctx context.Context, opts mailing.SendOptions) (*mailing.SendSummary, error) {
		sum, err := mailing.Coordinate(ctx, c, cn, opts, mailing.ClusterOptions{})
		if err != nil && ctx.Err() != nil {
			fmt.Fprintln(stderr, "mailrun send: the workers go on with the work queued; run the same command again to follow them")
		}
		return sum, err
	})
}

// clusterStatus is status --cluster.
func clusterStatus(ctx context.Context, c *campaign.Campaign, url string, stdout, stderr io.Writer) int {
	cn, ok := dialCluster(ctx, url, "status", "status", 0, stderr)
	if !ok {
		return exitUsage
	}
	defer cn.Close()
	st, _, err := mailing.StatusOf(ctx, c, cn)
	if cluster.NoRun(err) {
		fmt.Fprintf(stdout, "cluster %s: no send of %q yet\n", url, c.Name)
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "mailrun status:", errText(err))
		return exitUsage
	}
	state := "running"
	if st.Run.PassDone {
		state = "done"
	}
	fmt.Fprintf(stdout, "cluster %s: campaign %q began %s, pass %d %s: %d of %d batches done; writes kept on %d server(s)\n",
		url, c.Name, st.Run.Began.Local().Format(time.DateTime), st.Run.Pass, state, st.Done, st.Batches, st.Replicas)
	total := 0
	for _, n := range st.Counts {
		total += n
	}
	fmt.Fprintf(stdout, "%d recipients: %d sent, %d failed, %d deferred, %d unknown, %d skipped, %d in flight\n", total,
		st.Counts[cluster.Sent], st.Counts[cluster.Failed], st.Counts[cluster.Deferred], st.Counts[cluster.Unknown], st.Counts[cluster.Skipped], st.Counts[cluster.Sending])
	fmt.Fprintf(stdout, "%d workers live", len(st.Workers))
	for _, w := range st.Workers {
		fmt.Fprintf(stdout, "; %s since %s", campaign.Printable(w.Name), w.Since.Local().Format(time.TimeOnly))
	}
	fmt.Fprintln(stdout)
	return exitOK
}

// clusterReport is report --cluster.
func clusterReport(ctx context.Context, c *campaign.Campaign, url, format string, stdout, stderr io.Writer) int {
	cn, ok := dialCluster(ctx, url, "report", "report", 0, stderr)
	if !ok {
		return exitUsage
	}
	defer cn.Close()
	entries, err := mailing.ClusterReport(ctx, c, cn)
	if err == nil {
		err = journal.WriteEntries(stdout, entries, format)
	}
	if err != nil {
		fmt.Fprintln(stderr, "mailrun report:", errText(err))
		return exitUsage
	}
	return exitOK
}
