package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Run is what a coordinator began a campaign with, kept in the cluster so
// that a coordinator rerun on any machine continues it.
type Run struct {
	Campaign    string            `json:"campaign"` // the campaign's name
	Fingerprint string            `json:"fingerprint"`
	Files       map[string]string `json:"files"` // per-file hashes, to name what changed
	FilesKey    string            `json:"files_key"`
	// Rate and Burst are the campaign's send.rate and send.burst: the
	// total for the whole cluster, which live workers share.
	Rate  float64 `json:"rate"`
	Burst int     `json:"burst"`
	// Pass counts the coordinator's passes over the list: the first sends
	// to everyone, a later one to whom an earlier pass left deferred.
	// PassDone says the pass's batches are all done.
	Pass     int       `json:"pass"`
	PassDone bool      `json:"pass_done"`
	Began    time.Time `json:"began"`
	Updated  time.Time `json:"updated"`
}

// GetRun returns the run of campaign key ck and its revision, or
// jetstream.ErrKeyNotFound (wrapped) when none began.
func (cn *Conn) GetRun(ctx context.Context, ck string) (Run, uint64, error) {
	e, err := cn.runs.Get(ctx, ck)
	if err != nil {
		return Run{}, 0, fmt.Errorf("run %s: %w", ck, err)
	}
	var r Run
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return Run{}, 0, fmt.Errorf("run %s: %w", ck, err)
	}
	return r, e.Revision(), nil
}

// NoRun reports whether err says a campaign has no run in the cluster.
func NoRun(err error) bool { return errors.Is(err, jetstream.ErrKeyNotFound) }

// PutRun writes the run of ck: created when rev is 0, else replaced by
// compare-and-set, so two coordinators of one campaign cannot both write.
func (cn *Conn) PutRun(ctx context.Context, ck string, r Run, rev uint64) (uint64, error) {
	r.Updated = time.Now().UTC()
	data, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		rev, err = cn.runs.Create(ctx, ck, data)
	} else {
		rev, err = cn.runs.Update(ctx, ck, data, rev)
	}
	if err != nil {
		return 0, fmt.Errorf("run %s: %w (is another coordinator running this campaign?)", ck, err)
	}
	return rev, nil
}

// The states of a batch's marker.
const (
	batchPending = "pending" // about to be published
	batchQueued  = "queued"
	batchDone    = "done"
)

// batchKey is the marker's key and the message id of batch n of a pass.
func batchKey(ck string, pass, n int) string {
	return ck + ".batch.p" + strconv.Itoa(pass) + "." + strconv.Itoa(n)
}

// Batch is a batch of work as a worker receives it.
type Batch struct {
	// Data is what the coordinator published.
	Data []byte
	// Delivered counts deliveries of this batch, 1 the first time: more
	// means a worker before this one did not finish it.
	Delivered uint64
	msg       jetstream.Msg
	cn        *Conn
}

// Queue publishes batch n of campaign key ck, unless an earlier
// coordinator did: a marker in the runs bucket says so past the stream's
// duplicate window, and the message id (the marker's key) lets the stream
// drop a duplicate within it. The marker is created pending before the
// publish and turned queued after it by compare-and-set, so that it never
// overwrites a worker's "done"; a coordinator that dies between the two
// publishes again, which the duplicate window drops, and the claims guard
// beyond it.
func (cn *Conn) Queue(ctx context.Context, ck string, pass, n int, data []byte) (queued bool, err error) {
	key := batchKey(ck, pass, n)
	var rev uint64
	for rev == 0 {
		e, err := cn.runs.Get(ctx, key)
		switch {
		case err == nil && string(e.Value()) != batchPending:
			return false, nil // queued or done by an earlier coordinator
		case err == nil:
			rev = e.Revision()
		case errors.Is(err, jetstream.ErrKeyNotFound):
			rev, err = cn.runs.Create(ctx, key, []byte(batchPending))
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue // another coordinator just made it: read it
			}
			if err != nil {
				return false, fmt.Errorf("batch %d: %w", n, err)
			}
		default:
			return false, fmt.Errorf("batch %d: %w", n, err)
		}
	}
	if _, err := cn.js.Publish(ctx, workSubject+ck, data, jetstream.WithMsgID(key)); err != nil {
		return false, fmt.Errorf("batch %d: publish: %w", n, err)
	}
	_, err = cn.runs.Update(ctx, key, []byte(batchQueued), rev)
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return false, fmt.Errorf("batch %d: %w", n, err)
	}
	return true, nil
}

// BatchesDone counts the batches of a pass of ck that a worker finished,
// and all its batches, reading the markers with their values in one
// listing.
func (cn *Conn) BatchesDone(ctx context.Context, ck string, pass int) (done, all int, err error) {
	// A listing is a consumer of its own: bounded, so one that a restart
	// of the hub left without its messages fails and is asked again.
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	w, err := cn.runs.Watch(ctx, ck+".batch.p"+strconv.Itoa(pass)+".*", jetstream.IgnoreDeletes())
	if err != nil {
		return 0, 0, err
	}
	defer w.Stop()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return 0, 0, fmt.Errorf("list the batches: %w", ctx.Err())
			}
			if e == nil {
				return done, all, nil
			}
			all++
			if string(e.Value()) == batchDone {
				done++
			}
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("list the batches: %w", ctx.Err())
		}
	}
}

// listTimeout bounds one listing of keys or claims.
const listTimeout = 30 * time.Second

// Next waits up to wait for a batch of work; nil, nil when none came.
func (cn *Conn) Next(ctx context.Context, wait time.Duration) (*Batch, error) {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	msg, err := cn.work.Next(jetstream.FetchContext(wctx))
	if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil || wctx.Err() != nil && ctx.Err() == nil {
		return nil, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	b := &Batch{Data: msg.Data(), msg: msg, cn: cn}
	if md, err := msg.Metadata(); err == nil {
		b.Delivered = md.NumDelivered
	}
	return b, nil
}

// Progress tells the cluster the batch's worker is alive and busy with it,
// resetting its ack wait.
func (b *Batch) Progress() error { return b.msg.InProgress() }

// Done marks the batch done for the coordinator (every recipient has its
// outcome or was held by another worker), then acknowledges it. The mark
// comes first: an ack whose marker was lost would leave the coordinator
// waiting for a batch the queue no longer holds, while a mark whose ack
// was lost only gives the batch to a worker that finds every recipient
// taken.
func (b *Batch) Done(ctx context.Context) error {
	if key := b.msg.Headers().Get(jetstream.MsgIDHeader); key != "" {
		if _, err := b.cn.runs.Put(ctx, key, []byte(batchDone)); err != nil {
			return fmt.Errorf("mark batch done: %w", err)
		}
	}
	if err := b.msg.DoubleAck(ctx); err != nil {
		return fmt.Errorf("ack batch: %w", err)
	}
	return nil
}

// Release gives the batch back at once for another worker (this one
// cannot send: its relay refused the login, say).
func (b *Batch) Release() error { return b.msg.Nak() }
