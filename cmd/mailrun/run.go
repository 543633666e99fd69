package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/journal"
	"github.com/mailrun/mailrun/mailing"
)

// Exit codes, documented in README.md.
const (
	exitOK          = 0
	exitFailed      = 1 // some recipients failed
	exitUsage       = 2 // usage or configuration error
	exitInterrupted = 130
)

const usage = `mailrun: template-driven bulk mail from a YAML campaign and a CSV list.

Usage:
  mailrun check   CAMPAIGN                      find every problem before anything is sent
  mailrun preview CAMPAIGN -o DIR [--limit N]   write one .eml per recipient, send nothing
  mailrun serve   CAMPAIGN [--listen ADDR]      live preview in the browser while you edit
  mailrun send    CAMPAIGN [flags]              deliver through the smtp section's relay
  mailrun status  CAMPAIGN                      summarise the journal of earlier sends
  mailrun report  CAMPAIGN [--format csv|json]  every recipient's outcome
  mailrun bounces CAMPAIGN [--dry-run]          read bounces from the bounce mailbox
  mailrun init    DIR                           write a small working campaign
  mailrun hub     [--listen ADDR] [--store DIR] run a NATS JetStream hub for workers
  mailrun worker  NATS_URL [flags]              send the work a coordinator (send --cluster) queues
  mailrun version                               the version of this build

CAMPAIGN is a campaign file or a folder holding campaign.yaml.
Run "mailrun help COMMAND" (or "mailrun COMMAND --help") for its flags.
Exit codes: 0 success, 1 some recipients failed, 2 usage or configuration error, 130 interrupted.
`

// run is mailrun without the process: tests call it with their own
// arguments and writers.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmds := map[string]func(context.Context, []string, io.Reader, io.Writer, io.Writer) int{
		"check":   cmdCheck,
		"preview": cmdPreview,
		"serve":   cmdServe,
		"send":    cmdSend,
		"status":  cmdStatus,
		"report":  cmdReport,
		"bounces": cmdBounces,
		"init":    cmdInit,
		"hub":     cmdHub,
		"worker":  cmdWorker,
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && cmds[args[1]] != nil {
			return cmds[args[1]](ctx, []string{"--help"}, stdin, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, version())
		return exitOK
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "mailrun: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	return cmd(ctx, args[1:], stdin, stdout, stderr)
}

// synopses are the first line of each command's help.
var synopses = map[string]string{
	"check":   "mailrun check CAMPAIGN\n\nFinds every problem of the campaign and its list before anything is sent.",
	"preview": "mailrun preview CAMPAIGN -o DIR [--limit N]\n\nWrites one .eml per recipient (or group.eml) into DIR; sends nothing.",
	"serve":   "mailrun serve CAMPAIGN [--listen HOST:PORT]\n\nServes the preview's pages, rendered from the current files, and reloads them on every change; sends nothing.",
	"send":    "mailrun send CAMPAIGN [flags]\n\nDelivers through the smtp section's relay, journaling every outcome; rerun it after any stop.\nWith --cluster URL, queues the work for the cluster's workers and journals their outcomes.",
	"hub":     "mailrun hub [--listen HOST:PORT] [--store DIR]\n\nRuns an embedded NATS server with JetStream for send --cluster and its workers; every write is synced to disk.",
	"worker":  "mailrun worker NATS_URL [--concurrency N] [--smtp URL] [--name NAME]\n\nTakes batches of recipients from the cluster, renders and sends them through its own relay; passwords come from its own environment.",
	"status":  "mailrun status CAMPAIGN [--journal PATH] [--cluster URL]\n\nSummarises the journal of earlier sends.",
	"report":  "mailrun report CAMPAIGN [--format csv|json] [--journal PATH] [--cluster URL]\n\nLists every recipient's last outcome.",
	"bounces": "mailrun bounces CAMPAIGN [--dry-run] [--journal PATH]\n\nReads the bounce mailbox, suppresses hard bounces and marks them in the journal.",
	"init":    "mailrun init DIR\n\nWrites a small working campaign into DIR; never overwrites a file.",
}

// printUsage prints a command's help: its synopsis and its flags, spelled
// --flag as the README spells them.
func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s\n", synopses[fs.Name()])
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprint(w, "\nFlags:\n")
			first = false
		}
		name, usage := flag.UnquoteUsage(f)
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		arg := ""
		if name != "" {
			arg = " " + name
		}
		fmt.Fprintf(w, "  %s%s%s\n    \t%s", dash, f.Name, arg, strings.ReplaceAll(usage, "\n", "\n    \t"))
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// parse parses flags that may come before or after the positional
// arguments ("preview CAMPAIGN -o DIR") and checks their count. -h and
// --help print the command's help to stdout: then ok is false and code 0.
func parse(fs *flag.FlagSet, args []string, want int, stdout, stderr io.Writer) (pos []string, code int, ok bool) {
	fs.SetOutput(stderr)
	// Parse would print the usage itself, to stderr, for --help too: the
	// help goes to stdout once, a mistake's usage to stderr once.
	fs.Usage = func() {}
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, fs)
			return nil, exitOK, false
		}
		if err != nil {
			printUsage(stderr, fs)
			return nil, exitUsage, false
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != want {
		fmt.Fprintf(stderr, "mailrun %s: want %d argument(s), got %d\n", fs.Name(), want, len(pos))
		printUsage(stderr, fs)
		return nil, exitUsage, false
	}
	return pos, 0, true
}

// version is mailrun's version as the build recorded it: the module
// version (or "devel" for a build from a checkout) and the commit.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "mailrun (no build information)"
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	var rev, when, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+changes"
			}
		}
	}
	out := "mailrun " + v
	if rev != "" {
		out += fmt.Sprintf(" (commit %.12s%s %s)", rev, dirty, when)
	}
	return out + " " + bi.GoVersion
}

// load loads a campaign for a command that must not go on with errors.
func load(path string, stderr io.Writer) (*campaign.Campaign, bool) {
	c, err := campaign.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, errText(err))
		fmt.Fprintf(stderr, "mailrun: fix the campaign first (mailrun check %s shows every problem)\n", path)
		return nil, false
	}
	for _, p := range c.Problems() {
		fmt.Fprintln(stderr, p)
	}
	sizeMemory(c)
	return c, true
}

func cmdCheck(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	pos, code, ok := parse(fs, args, 1, stdout, stderr)
	if !ok {
		return code
	}
	c, err := campaign.Load(pos[0])
	var ps campaign.Problems
	if err != nil && (c == nil || !errors.As(err, &ps)) {
		fmt.Fprintln(stdout, errText(err))
		fmt.Fprintln(stdout, "check: the campaign file cannot be read")
		return exitUsage
	}
	sizeMemory(c)
	rep, err := mailing.Check(ctx, c, stdout)
	if code := interrupted(ctx, err, stderr); code != 0 {
		return code
	}
	if err != nil {
		fmt.Fprintln(stderr, "mailrun check:", errText(err))
		return exitUsage
	}
	return reportExit(rep)
}

// reportExit gives check and preview the exit codes of send: 2 when the
// campaign itself cannot be used (a problem that is not one row's), 1 when
// some rows had errors and the others rendered (and, for preview, were
// written), 0 when every row did.
func reportExit(rep *mailing.Report) int {
	switch {
	case rep.CampaignErrors > 0:
		return exitUsage
	case rep.Errors > 0 || rep.Failed > 0:
		return exitFailed
	}
	return exitOK
}

func cmdPreview(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("preview", flag.ContinueOnError)
	dir := fs.String("o", "", "`DIR` to write the .eml files into (required)")
	limit := fs.Int("limit", 0, "write at most `N` messages (0: all)")
	open := fs.Bool("open", false, "open the gallery (DIR/index.html) in the default browser")
	pos, code, ok := parse(fs, args, 1, stdout, stderr)
	if !ok {
		return code
	}
	if *dir == "" {
		fmt.Fprintln(stderr, "mailrun preview: -o DIR is required")
		return exitUsage
	}
	c, ok := load(pos[0], stderr)
	if !ok {
		return exitUsage
	}
	rep, err := mailing.Preview(ctx, c, *dir, *limit, stdout)
	if code := interrupted(ctx, err, stderr); code != 0 {
		return code
	}
	if err != nil {
		fmt.Fprintln(stderr, "mailrun preview:", errText(err))
		return exitUsage
	}
	if *open {
		openBrowser(ctx, filepath.Join(*dir, "index.html"), stderr)
	}
	return reportExit(rep)
}

// openBrowser opens path in the default browser with the desktop's opener
// (xdg-open, open), or says why it cannot: a preview is written either way,
// so this never changes the exit code.
func openBrowser(ctx context.Context, path string, stderr io.Writer) {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	name, args := "xdg-open", []string{abs}
	switch goruntime.GOOS {
	case "darwin":
		name = "open"
	case "windows":
		name, args = "rundll32", []string{"url.dll,FileProtocolHandler", abs}
	}
	bin, err := exec.LookPath(name)
	if err != nil || goruntime.GOOS == "linux" && os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		fmt.Fprintf(stderr, "mailrun preview: no browser to open here (no %s or no display); open %s yourself\n", name, abs)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput(); err != nil {
		why := err.Error()
		if said := strings.TrimSpace(string(out)); said != "" {
			why += ": " + said
		}
		fmt.Fprintf(stderr, "mailrun preview: %s %s: %s; open it yourself\n", name, abs, campaign.Printable(why))
	}
}

func cmdInit(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	pos, code, ok := parse(fs, args, 1, stdout, stderr)
	if !ok {
		return code
	}
	if err := campaign.Init(pos[0]); err != nil {
		fmt.Fprintln(stderr, "mailrun init:", errText(err))
		return exitUsage
	}
	fmt.Fprintf(stdout, "init: wrote a campaign to %s; try: mailrun check %s && mailrun preview %s -o out\n", pos[0], pos[0], pos[0])
	return exitOK
}

// secondInterrupt cancels hard on the second Ctrl-C or SIGTERM: the first
// one (which also cancels ctx, through main's signal.NotifyContext) only
// stops taking new recipients. sig is registered before the run starts, so
// no signal falls between the two.
func secondInterrupt(ctx, hard context.Context, cancelHard context.CancelFunc, sig <-chan os.Signal, stderr io.Writer) {
	seen := 0
	select {
	case <-ctx.Done():
	case <-sig:
		seen++
	case <-hard.Done():
		return
	}
	fmt.Fprintln(stderr, "\nmailrun send: stopping: finishing the messages in flight (interrupt again to stop at once)")
	for seen < 2 {
		select {
		case <-sig:
			seen++
		case <-hard.Done():
			return
		}
	}
	fmt.Fprintln(stderr, "mailrun send: stopping at once")
	cancelHard()
	// A third interrupt kills the process, as a user pressing it expects.
	signal.Reset(os.Interrupt, syscall.SIGTERM)
}

func cmdStatus(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	jpath := fs.String("journal", "", "journal `PATH` (default: <name>.journal next to the campaign)")
	clusterURL := fs.String("cluster", "", "read the state of the NATS cluster at `URL` instead of the journal")
	pos, code, ok := parse(fs, args, 1, stdout, stderr)
	if !ok {
		return code
	}
	c, ok := load(pos[0], stderr)
	if !ok {
		return exitUsage
	}
	if *clusterURL != "" {
		return clusterStatus(ctx, c, *clusterURL, stdout, stderr)
	}
	pl, err := mailing.NewPlan(ctx, c, mailing.SendOptions{Journal: *jpath}, io.Discard)
	if code := interrupted(ctx, err, stderr); code != 0 {
		return code
	}
	if err != nil {
		fmt.Fprintln(stderr, "mailrun status:", errText(err))
		return exitUsage
	}
	snap, err := mailing.Peek(pl.Journal)
	if errors.Is(err, iofs.ErrNotExist) {
		fmt.Fprintf(stdout, "no send yet: no journal at %s\n", pl.Journal)
		printList(stdout, c, pl)
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "mailrun status:", errText(err))
		return exitUsage
	}
	printJournal(stdout, pl.Journal, snap)
	printList(stdout, c, pl)
	return exitOK
}

// printJournal says what the journal holds. While a send holds it, its
// Sending recipients are in flight; otherwise a run died between intent
// and outcome, and they are unknown.
func printJournal(w io.Writer, path string, snap *journal.Snapshot) {
	s := snap.Counts()
	fmt.Fprintf(w, "journal %s: campaign %q began %s, %d run(s) recorded", path, snap.Began.Campaign, snap.Began.Time.Local().Format(time.DateTime), 1+snap.Runs)
	if snap.InUse {
		fmt.Fprint(w, "; a send is running now")
	}
	fmt.Fprintln(w)
	unknown, inFlight := s.Unknown+s.Sending, 0
	if snap.InUse {
		unknown, inFlight = s.Unknown, s.Sending
	}
	fmt.Fprintf(w, "%d recipients: %d sent, %d failed, %d deferred, %d unknown, %d skipped, %d bounced",
		s.Total(), s.Sent, s.Failed, s.Deferred, unknown, s.Skipped, s.Bounced)
	if inFlight > 0 {
		fmt.Fprintf(w, ", %d in flight", inFlight)
	}
	fmt.Fprintln(w)
	if unknown > 0 {
		fmt.Fprintln(w, "unknown: the connection ended after the message was sent; check the relay's log, then send --resend-unknown if they did not get it")
	}
	if s.Deferred > 0 {
		fmt.Fprintln(w, "deferred: temporary failures; the next send tries them again")
	}
}

// printList says how much of the list is still to send.
func printList(w io.Writer, c *campaign.Campaign, pl *mailing.Plan) {
	fmt.Fprintf(w, "list %s: %d rows: %d not yet sent", c.File(c.Recipients.File), pl.Rows, pl.ToSend)
	for _, x := range []struct {
		n    int
		what string
	}{{pl.Suppressed, "suppressed"}, {pl.Duplicates, "duplicates"}, {pl.Invalid, "with problems (mailrun check shows them)"}} {
		if x.n > 0 {
			fmt.Fprintf(w, ", %d %s", x.n, x.what)
		}
	}
	fmt.Fprintln(w)
}

func cmdReport(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	format := fs.String("format", "csv", "the output format, `csv|json` (json: one object per line)")
	jpath := fs.String("journal", "", "journal `PATH` (default: <name>.journal next to the campaign)")
	clusterURL := fs.String("cluster", "", "read the state of the NATS cluster at `URL` instead of the journal")
	pos, code, ok := parse(fs, args, 1, stdout, stderr)
	if !ok {
		return code
	}
	if *clusterURL != "" {
		c, ok := load(pos[0], stderr)
		if !ok {
			return exitUsage
		}
		return clusterReport(ctx, c, *clusterURL, *format, stdout, stderr)
	}
	path, ok := journalOf(pos[0], *jpath, stderr)
	if !ok {
		return exitUsage
	}
	if err := mailing.WriteReport(stdout, path, *format); err != nil {
		fmt.Fprintln(stderr, "mailrun report:", errText(err))
		return exitUsage
	}
	return exitOK
}

// journalOf is the journal path of a campaign, or override.
func journalOf(path, override string, stderr io.Writer) (string, bool) {
	if override != "" {
		return override, true
	}
	c, ok := load(path, stderr)
	if !ok {
		return "", false
	}
	return mailing.JournalPath(c), true
}

// errText is an error as the terminal shows it: each problem of a
// campaign.Problems on its own line, and no raw control character (a CR
// LF from a file name or a server's reply) anywhere, so that an error can
// never forge another line.
func errText(err error) string {
	if ps, ok := err.(campaign.Problems); ok {
		return ps.Error() // each Problem is printable on its own
	}
	return campaign.Printable(err.Error())
}

// interrupted maps a cancelled context to exit code 130, or returns 0.
func interrupted(ctx context.Context, err error, stderr io.Writer) int {
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		fmt.Fprintln(stderr, "mailrun: interrupted")
		return exitInterrupted
	}
	return 0
}

func isTerminal(r any) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress shows a send: a bar on a terminal, otherwise a line every ten
// seconds, so logs of unattended runs stay readable.
type progress struct {
	out                io.Writer
	bar                *progressbar.ProgressBar
	start              time.Time
	done, failed, sent atomic.Int64
	stop               chan struct{}
	stopped            chan struct{}
}

func newProgress(total int, stderr io.Writer, tty bool) *progress {
	p := &progress{out: stderr, start: time.Now(), stop: make(chan struct{}), stopped: make(chan struct{})}
	if tty {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription("sending"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("msg"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetWidth(30),
		)
		close(p.stopped)
		return p
	}
	go func() {
		defer close(p.stopped)
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.line()
			case <-p.stop:
				return
			}
		}
	}()
	return p
}

func (p *progress) line() {
	el := time.Since(p.start)
	fmt.Fprintf(p.out, "send: %d done (%d sent, %d failed or deferred), %.1f msg/s, %s elapsed\n",
		p.done.Load(), p.sent.Load(), p.failed.Load(), float64(p.sent.Load())/el.Seconds(), el.Round(time.Second))
}

// add counts one settled recipient. The bar's total is the plan's "to
// send": recipients settled by earlier runs or skipped (suppressed,
// duplicate, invalid) are not on it, so rate and time left are this run's.
func (p *progress) add(e journal.Entry) {
	if e.Reason == mailing.EarlierRun || e.Status == journal.Skipped {
		return
	}
	p.done.Add(1)
	switch e.Status {
	case journal.Sent:
		p.sent.Add(1)
	case journal.Failed, journal.Deferred, journal.Unknown:
		p.failed.Add(1)
	}
	if p.bar != nil {
		p.bar.Add(1)
	}
}

// logWriter is where run notices go: above the bar, without breaking it.
func (p *progress) logWriter() io.Writer {
	if p.bar == nil {
		return p.out
	}
	return writerFunc(func(b []byte) (int, error) {
		progressbar.Bprintln(p.bar, strings.TrimRight(string(b), "\n"))
		return len(b), nil
	})
}

// finish ends the progress display: a completed run fills the bar, a
// stopped one leaves it where the run stopped.
func (p *progress) finish(completed bool) {
	if p.bar != nil {
		if completed {
			p.bar.Finish()
		} else {
			p.bar.Exit()
		}
		fmt.Fprintln(p.out)
		return
	}
	close(p.stop)
	<-p.stopped
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
