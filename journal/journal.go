package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Version is the journal format written by this package. Open and Read
// refuse a journal that begins with a higher version, because they cannot
// know what its records mean.
const Version = 1

// Status is what happened to one recipient. The last record of a
// recipient decides its status.
type Status string

// The statuses of a recipient.
const (
	// Sending is the intent, written before the SMTP transaction starts.
	// A recipient whose last record is Sending when a journal is loaded
	// reads as Unknown: the run died between intent and outcome.
	Sending Status = "sending"
	// Sent: the server accepted the message for this recipient.
	Sent Status = "sent"
	// Failed: a permanent failure; a rerun does not retry it by default.
	Failed Status = "failed"
	// Deferred: temporary failures that outlived the retries.
	Deferred Status = "deferred"
	// Unknown: no reply after the final "." (RFC 1047), or a crash between
	// intent and outcome; the message may have been delivered.
	Unknown Status = "unknown"
	// Skipped: not attempted; Entry.Reason says why (suppressed,
	// duplicate, invalid, ...). A skip never replaces a status the
	// recipient already has: a bad row with the address of a message in
	// flight may be recorded after that message's intent, and must not
	// turn it into "not attempted", which a rerun would send again.
	Skipped Status = "skipped"
	// Bounced: accepted, then reported undeliverable by a bounce message.
	Bounced Status = "bounced"
)

// statuses maps a compact code (the index) to a Status; code 0 means none,
// so the in-memory state costs one byte per recipient for the value.
var statuses = [...]Status{"", Sending, Sent, Failed, Deferred, Unknown, Skipped, Bounced}

func statusCode(s Status) (uint8, bool) {
	for i, v := range statuses {
		if i > 0 && v == s {
			return uint8(i), true
		}
	}
	return 0, false
}

// Valid reports whether s is one of the statuses above.
func (s Status) Valid() bool {
	_, ok := statusCode(s)
	return ok
}

// Reply is the server's reply that decided an outcome.
type Reply struct {
	Code     int    `json:"code,omitempty"`
	Enhanced string `json:"enhanced,omitempty"`
	Text     string `json:"text,omitempty"`
}

// Entry is one event for one recipient: one line of the journal.
type Entry struct {
	// Time is when the event happened; Record fills in the current time
	// when it is zero.
	Time time.Time `json:"time"`
	// Row is the recipient's CSV row (1 is the first data row's line as
	// the caller numbers it); zero for none.
	Row int `json:"row,omitempty"`
	// Email is the recipient's address as written in the CSV. The
	// journal keys recipients by the Key given to Open.
	Email  string `json:"email"`
	Status Status `json:"status"`
	// Reason says why a recipient was skipped.
	Reason    string `json:"reason,omitempty"`
	Reply     *Reply `json:"reply,omitempty"`
	MessageID string `json:"message_id,omitempty"`
	Attempts  int    `json:"attempts,omitempty"`
	Error     string `json:"error,omitempty"`
}

// Header describes the run that opens a journal. The first run's header is
// the journal's "begin" record; every later run that records something
// appends its own "run" record, so the history of runs is kept.
type Header struct {
	// Time is when the run started; Open fills in the current time when
	// it is zero.
	Time     time.Time `json:"time"`
	Campaign string    `json:"campaign,omitempty"`
	// Fingerprint identifies the campaign files (a hash chosen by the
	// caller); a rerun compares it with Began().Fingerprint to notice
	// that the campaign changed since the journal began.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Files holds a hash per campaign file (name to hash, chosen by the
	// caller), so that a rerun can name the files that changed.
	Files map[string]string `json:"files,omitempty"`
	// Command names what wrote the run, e.g. "send" or "bounces".
	Command string `json:"command,omitempty"`
}

// Summary counts recipients by their last status.
type Summary struct {
	Sending  int `json:"sending,omitempty"`
	Sent     int `json:"sent"`
	Failed   int `json:"failed"`
	Deferred int `json:"deferred"`
	Unknown  int `json:"unknown"`
	Skipped  int `json:"skipped"`
	Bounced  int `json:"bounced"`
}

// Total is the number of recipients counted.
func (s Summary) Total() int {
	return s.Sending + s.Sent + s.Failed + s.Deferred + s.Unknown + s.Skipped + s.Bounced
}

func (s *Summary) add(st Status, n int) {
	switch st {
	case Sending:
		s.Sending += n
	case Sent:
		s.Sent += n
	case Failed:
		s.Failed += n
	case Deferred:
		s.Deferred += n
	case Unknown:
		s.Unknown += n
	case Skipped:
		s.Skipped += n
	case Bounced:
		s.Bounced += n
	}
}

// Key maps an address to the key under which the journal knows its
// recipient: two addresses with one key are one recipient. The journal
// takes the campaign's rule (campaign.AddrKey) rather than holding a copy
// of it, so duplicates, suppress lists, bounces and the journal never
// disagree about who is who. A nil Key compares addresses as written.
type Key func(addr string) string

func (k Key) of(addr string) string {
	if k == nil {
		return addr
	}
	return k(addr)
}

// ErrLocked is matched by errors.Is when another process (or another Open
// in this process) holds a journal; the error itself is a *LockedError.
var ErrLocked = errors.New("journal is in use by another run")

// ErrClosed is returned by Record, Queue and Flush after Close, and by a
// second Close.
var ErrClosed = errors.New("journal is closed")

// LockedError says which journal is held by another run.
type LockedError struct {
	Path string
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("journal %s is in use by another run", e.Path)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Journal is an open, locked journal. Its methods are safe for concurrent
// use.
type Journal struct {
	path  string
	f     *os.File
	began Header
	// addrKey is the caller's rule for the same recipient.
	addrKey Key
	seed    maphash.Seed
	// sync makes a batch written into the zeros durable: fdatasync on
	// Linux (see dataSync). fullSync is f.Sync, for the writes that change
	// the file's size. A test swaps either to inject a failure.
	sync     func() error
	fullSync func() error
	// end is the size of the data up to its last durable batch: a failed
	// write or fsync cuts the file back to it.
	end int64
	// size is the file's length; the bytes from end to size are zeros that
	// grow wrote and fsynced, so that a batch written over them changes
	// neither the size nor the blocks of the file and needs only a data
	// sync. Only the writer goroutine (and Close after it) uses end and size.
	size int64

	mu      sync.Mutex
	wake    *sync.Cond // signalled when cur gains an entry or closing is set
	cur     *batch     // entries waiting for the writer
	head    []byte     // the begin or run record, written with the first entry
	state   map[uint64]uint8
	summary Summary
	err     error // sticky: the first write or fsync error
	closing bool
	done    chan struct{} // closed when the writer goroutine returns
	batches int           // writes so far, to show group commit in tests
	// gatherN and gatherWait: see Gather.
	gatherN    int
	gatherWait time.Duration
}

// batch is one group commit: the lines of every entry queued while the
// previous batch was being written, written with one write and one fsync.
type batch struct {
	buf   []byte
	keys  []update
	flush bool // a Flush or Record waits on this batch: write it now
	// flushers counts the Flush calls waiting on this batch (see Gather).
	flushers int
	timed    bool // a timer will flush this batch of queued entries
	done     chan struct{}
	err      error
}

// growChunk is how far grow writes zeros ahead of the data. A growth
// costs a write of this many zeros and a full fsync, a few milliseconds,
// once per few thousand entries of 200 to 400 bytes, while each batch
// written into the zeros saves about 100 µs of fsync; and a crash leaves
// at most this much of zeros behind, which the next Open cuts.
const growChunk = 1 << 20

// queueDelay bounds how long a queued entry waits for a Record to carry
// it: an outcome normally rides with the worker's next intent, in the same
// write and fsync, instead of costing an fsync of its own that the next
// intent would have to wait out.
const queueDelay = 50 * time.Millisecond

type update struct {
	key  uint64
	code uint8
}

// Open opens the journal at path for a run described by h, creating it if
// needed, and locks it for this run alone. key decides which addresses
// are one recipient.
//
// It returns an error matching ErrLocked (a *LockedError) when another run
// holds the journal. It loads the last status of every recipient; a torn
// last line left by a crash is dropped (or kept, when it is a complete
// record that only lacks its newline), but a corrupt line elsewhere is an
// error naming its line number, since silently skipping it could send a
// message twice. h is written lazily with the first entry, so a run that
// opens the journal and gives up leaves no trace.
func Open(path string, h Header, key Key) (*Journal, error) {
	return open(path, h, key, true)
}

func open(path string, h Header, key Key, create bool) (*Journal, error) {
	// No O_APPEND: batches are written with WriteAt at j.end, into the
	// zeros that grow wrote ahead of them.
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	if err := lock(f); err != nil {
		f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, &LockedError{Path: path}
		}
		return nil, fmt.Errorf("lock journal %s: %w", path, err)
	}
	j := &Journal{
		path:     path,
		f:        f,
		addrKey:  key,
		seed:     maphash.MakeSeed(),
		sync:     dataSync(f),
		fullSync: f.Sync,
		state:    make(map[uint64]uint8),
		done:     make(chan struct{}),
	}
	j.wake = sync.NewCond(&j.mu)
	if err := j.load(h); err != nil {
		f.Close() // also releases the lock
		return nil, err
	}
	go j.writer()
	return j, nil
}

// load reads the existing records into j.state, repairs a torn tail and
// prepares the header line that the first batch will carry.
func (j *Journal) load(h Header) error {
	if h.Time.IsZero() {
		h.Time = time.Now().UTC()
	}
	var began *Header
	sc := scanner{path: j.path}
	tail, err := sc.scan(j.f, func(r *record) error {
		switch {
		case r.Type == typeBegin:
			hh := r.header()
			began = &hh
		case r.Type == typeRun:
		default:
			j.apply(r.Entry.Email, r.Entry.Status)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// A crash between intent and outcome: the message may have gone.
	for k, c := range j.state {
		if statuses[c] == Sending {
			j.state[k], _ = statusCode(Unknown)
			j.summary.add(Sending, -1)
			j.summary.add(Unknown, 1)
		}
	}
	end, err := j.repair(tail)
	if err != nil {
		return err
	}
	// The zeros are written lazily, by the first batch's grow, so that a
	// run that records nothing (or MarkBounced, whose only batch is also
	// its last) does not pay a megabyte and an fsync for them.
	j.end, j.size = end, end
	typ := typeRun
	if began == nil {
		// An empty journal (or one whose only line was torn) starts anew.
		typ = typeBegin
		began = &h
		if err := syncDir(j.path); err != nil {
			return fmt.Errorf("journal %s: sync directory: %w", j.path, err)
		}
	}
	j.began = *began
	line, err := json.Marshal(headerRecord(typ, h))
	if err != nil {
		return fmt.Errorf("journal %s: encode header: %w", j.path, err)
	}
	j.head = append(line, '\n')
	j.cur = &batch{done: make(chan struct{})}
	return nil
}

// repair makes sure the next batch starts on a new line after a crash
// tore the last one, and returns where the data ends: a complete record
// that lacks only its newline is kept (it may say "sent", which avoids a
// duplicate), anything else is cut off; neither was ever acknowledged to a
// caller. Zeros left by a crash after grow are cut too, so the file is
// exactly its data until the next grow.
func (j *Journal) repair(t tailInfo) (int64, error) {
	if t.size == t.good {
		return t.size, nil
	}
	end := t.good
	if t.valid {
		if _, err := j.f.WriteAt([]byte{'\n'}, t.data); err != nil {
			return 0, fmt.Errorf("journal %s: end torn line: %w", j.path, err)
		}
		end = t.data + 1
	}
	if end < t.size {
		if err := j.f.Truncate(end); err != nil {
			return 0, fmt.Errorf("journal %s: cut torn line: %w", j.path, err)
		}
	}
	if err := j.f.Sync(); err != nil {
		return 0, fmt.Errorf("journal %s: sync: %w", j.path, err)
	}
	return end, nil
}

// apply sets the last status of addr; the caller holds j.mu or owns j.
func (j *Journal) apply(addr string, st Status) {
	code, _ := statusCode(st)
	j.applyKey(j.key(addr), code)
}

func (j *Journal) applyKey(k uint64, code uint8) {
	old, ok := j.state[k]
	if ok && statuses[code] == Skipped {
		return // see Skipped
	}
	if ok {
		j.summary.add(statuses[old], -1)
	}
	j.state[k] = code
	j.summary.add(statuses[code], 1)
}

// key hashes an address's Key to 64 bits, which keeps a million
// recipients in a few tens of megabytes; with a million addresses the
// chance that two share a key is below one in ten million.
func (j *Journal) key(addr string) uint64 {
	return maphash.String(j.seed, j.addrKey.of(addr))
}

// Began is the header the journal began with (h itself for a new journal).
// A caller compares its Fingerprint with the current campaign's to warn
// that the campaign files changed since the first run.
func (j *Journal) Began() Header { return j.began }

// Path is the journal's file name.
func (j *Journal) Path() string { return j.path }

// Status returns the last durable status of the recipient addr (compared
// by the journal's Key), and false if the journal has no record of it. A record
// still waiting for its fsync does not count yet.
func (j *Journal) Status(addr string) (Status, bool) {
	k := j.key(addr)
	j.mu.Lock()
	defer j.mu.Unlock()
	c, ok := j.state[k]
	return statuses[c], ok
}

// Counts counts recipients by their last durable status.
func (j *Journal) Counts() Summary {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.summary
}

// Record appends e and returns once it is written and fsynced, so that an
// intent (Sending) is on disk before the SMTP transaction starts and an
// outcome is on disk before it counts. Concurrent calls share one write
// and one fsync (group commit). A write or fsync error is returned to
// every caller of that batch and to every later call: after it the journal
// cannot tell what is on disk, so the run must stop.
func (j *Journal) Record(e Entry) error {
	b, err := j.enqueue(e, true)
	if err != nil {
		return err
	}
	<-b.done
	return b.err
}

// Queue appends e like Record but returns without waiting for the fsync.
// It suits outcomes: the entry is written with the next Record (the
// worker's next intent), in the same write and fsync, or after queueDelay
// at the latest, and because the file is written in order, that Record
// returns only when this outcome is durable too. A crash therefore leaves
// at most one unconfirmed outcome per worker, read back as Unknown. Queue
// returns the journal's sticky error, if any, or ErrClosed.
func (j *Journal) Queue(e Entry) error {
	_, err := j.enqueue(e, false)
	return err
}

// Flush returns once everything queued before it is durable, with the
// journal's sticky error if there is one.
func (j *Journal) Flush() error {
	j.mu.Lock()
	if err := j.refuse(); err != nil {
		j.mu.Unlock()
		return err
	}
	b := j.cur
	b.flush = true
	b.flushers++
	j.wake.Signal()
	j.mu.Unlock()
	<-b.done
	return b.err
}

// Gather makes the writer hold a batch that a Flush asked for until n
// Flush calls wait on it, or for wait at most, so that n workers that each
// need their intent durable before they go on share one sync instead of
// taking turns (measured on a 20,000-message send over 4 connections:
// 5,500 syncs instead of 9,900, and 10% less CPU). The wait bounds what a
// worker can lose when the others are slow or gone. n < 2 turns it off.
func (j *Journal) Gather(n int, wait time.Duration) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.gatherN, j.gatherWait = n, wait
}

// gather holds the current batch as Gather asks; the caller holds j.mu.
func (j *Journal) gather() {
	b := j.cur
	if j.gatherN < 2 || b.flushers >= j.gatherN || j.closing {
		return
	}
	timedOut := false
	t := time.AfterFunc(j.gatherWait, func() {
		j.mu.Lock()
		defer j.mu.Unlock()
		timedOut = true
		j.wake.Signal()
	})
	defer t.Stop()
	for !timedOut && b.flushers < j.gatherN && !j.closing {
		j.wake.Wait()
	}
}

// refuse is the error for a call that cannot queue; the caller holds j.mu.
func (j *Journal) refuse() error {
	if j.err != nil {
		return j.err
	}
	if j.closing {
		return ErrClosed
	}
	return nil
}

func (j *Journal) enqueue(e Entry, wait bool) (*batch, error) {
	if strings.TrimSpace(e.Email) == "" {
		return nil, fmt.Errorf("journal %s: record without an address", j.path)
	}
	code, ok := statusCode(e.Status)
	if !ok {
		return nil, fmt.Errorf("journal %s: record <%s>: unknown status %q", j.path, e.Email, e.Status)
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	line, err := json.Marshal(&e) // escapes CR and LF, so one entry stays one line
	if err != nil {
		return nil, fmt.Errorf("journal %s: encode <%s>: %w", j.path, e.Email, err)
	}
	k := j.key(e.Email)

	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.refuse(); err != nil {
		return nil, err
	}
	b := j.cur
	b.buf = append(append(b.buf, line...), '\n')
	b.keys = append(b.keys, update{key: k, code: code})
	switch {
	case wait && !b.flush:
		b.flush = true
		j.wake.Signal()
	case !wait && !b.flush && !b.timed:
		b.timed = true
		time.AfterFunc(queueDelay, func() {
			j.mu.Lock()
			defer j.mu.Unlock()
			if j.cur == b && !b.flush {
				b.flush = true
				j.wake.Signal()
			}
		})
	}
	return b, nil
}

// writer is the one goroutine that writes: it takes every entry queued so
// far as one batch, writes and fsyncs it, applies it to the state and
// wakes its callers, then takes the next batch, which filled up meanwhile.
func (j *Journal) writer() {
	defer close(j.done)
	var spare []byte
	for {
		j.mu.Lock()
		for !j.cur.flush && !j.closing {
			j.wake.Wait()
		}
		j.gather()
		b := j.cur
		if len(b.keys) == 0 && !b.flush { // closing, nothing left
			j.mu.Unlock()
			return
		}
		j.cur = &batch{buf: spare[:0], done: make(chan struct{})}
		err := j.err
		head := j.head
		last := j.closing // nothing can be queued after it
		j.mu.Unlock()

		if err == nil && len(b.keys) > 0 {
			p := b.buf
			if head != nil {
				p = append(head, p...)
			}
			err = j.write(p, last)
		}

		j.mu.Lock()
		if err != nil {
			if j.err == nil {
				j.err = err
			}
		} else if len(b.keys) > 0 {
			j.head = nil
			j.batches++
			for _, u := range b.keys {
				j.applyKey(u.key, u.code)
			}
		}
		j.mu.Unlock()
		b.err = err
		close(b.done)
		spare = b.buf
		// Let the callers just woken queue their next entries before the
		// next batch is taken: without this the writer takes a batch
		// holding only the callers that arrived during the last fsync, the
		// workers split into two alternating halves, and every batch is
		// half as full as it could be (measured: 2 entries per batch with
		// 4 workers, 3.8 with the yield, doubling records per second).
		runtime.Gosched()
	}
}

// write writes p at the end of the data and makes it durable. A batch
// that fits in the zeros needs only a data sync; one that does not first
// grows the file, except the last batch before Close, which is written
// past the zeros with one full fsync: Close would trim the zeros again at
// once.
func (j *Journal) write(p []byte, last bool) error {
	end := j.end + int64(len(p))
	syncFn := j.sync
	if end > j.size {
		if last {
			syncFn = j.fullSync
		} else if err := j.grow(end); err != nil {
			j.cut()
			return err
		}
	}
	if _, err := j.f.WriteAt(p, j.end); err != nil {
		j.cut()
		return fmt.Errorf("journal %s: write: %w", j.path, err)
	}
	if err := syncFn(); err != nil {
		j.cut()
		return fmt.Errorf("journal %s: fsync: %w", j.path, err)
	}
	j.end = end
	j.size = max(j.size, end)
	return nil
}

// grow writes zeros from j.size to the next multiple of growChunk past
// need and fsyncs them with the file's new size, so that the batches
// written over them until the next grow change no metadata that fdatasync
// would have to flush. Real zeros, not a hole or fallocate's unwritten
// extents: writing into those still allocates or converts blocks, which
// costs the data sync as much as an append (measured).
func (j *Journal) grow(need int64) error {
	size := (need/growChunk + 1) * growChunk
	zeros := make([]byte, min(size-j.size, 64<<10))
	for off := j.size; off < size; off += int64(len(zeros)) {
		n := min(size-off, int64(len(zeros)))
		if _, err := j.f.WriteAt(zeros[:n], off); err != nil {
			return fmt.Errorf("journal %s: write zeros: %w", j.path, err)
		}
	}
	if err := j.fullSync(); err != nil {
		return fmt.Errorf("journal %s: fsync: %w", j.path, err)
	}
	j.size = size
	return nil
}

// cut removes, as far as it can, the part of a batch that a failed write
// or fsync may have left in the file, and the zeros after it. Its callers
// were told it failed and sent nothing; left in place, its intents would
// read back as unknown and keep those recipients from the next run.
func (j *Journal) cut() {
	if j.f.Truncate(j.end) == nil {
		j.size = j.end
		_ = j.fullSync()
	}
}

// trim cuts the zeros after the data, so that a journal closed cleanly is
// exactly its lines.
func (j *Journal) trim() error {
	if j.size == j.end {
		return nil
	}
	if err := j.f.Truncate(j.end); err != nil {
		return fmt.Errorf("journal %s: trim: %w", j.path, err)
	}
	j.size = j.end
	if err := j.fullSync(); err != nil {
		return fmt.Errorf("journal %s: fsync: %w", j.path, err)
	}
	return nil
}

// Close writes and fsyncs every queued entry, cuts the zeros written ahead
// of the data, then unlocks and closes the file. It returns the journal's
// sticky error if a write ever failed, and ErrClosed when called twice.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closing {
		j.mu.Unlock()
		return ErrClosed
	}
	j.closing = true
	j.wake.Signal()
	j.mu.Unlock()
	<-j.done

	err := j.err
	if err == nil {
		err = j.trim()
	}
	if uerr := unlock(j.f); uerr != nil && err == nil {
		err = fmt.Errorf("unlock journal %s: %w", j.path, uerr)
	}
	if cerr := j.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close journal %s: %w", j.path, cerr)
	}
	return err
}

// syncDir makes a new journal's directory entry durable, so a crash right
// after the first fsync cannot lose the whole file.
func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
