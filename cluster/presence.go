package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// presenceTTL is how long a worker counts as live after its last
// heartbeat: three beats, so one late beat does not halve the others'
// share of the rate.
const (
	presenceTTL = 6 * time.Second
	heartbeat   = 2 * time.Second
)

// Worker is what a live worker says of itself.
type Worker struct {
	Name        string    `json:"name"`
	Concurrency int       `json:"concurrency"`
	Relay       string    `json:"relay"`
	Since       time.Time `json:"since"`
}

// Join announces w as live until ctx ends, renewing the entry every
// heartbeat; a worker that dies drops out presenceTTL later. It returns
// after the first announcement.
func (cn *Conn) Join(ctx context.Context, w Worker) error {
	data, err := json.Marshal(w)
	if err != nil {
		return err
	}
	// Two workers given one name must still count as two.
	key := CampaignKey(w.Name + "-" + randomSuffix())
	if _, err := cn.workers.Put(ctx, key, data); err != nil {
		return err
	}
	go func() {
		t := time.NewTicker(heartbeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				// Leave at once, so the others take up the rate now.
				dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
				_ = cn.workers.Delete(dctx, key)
				cancel()
				return
			case <-t.C:
				_, _ = cn.workers.Put(ctx, key, data)
			}
		}
	}()
	return nil
}

// Workers returns the live workers.
func (cn *Conn) Workers(ctx context.Context) ([]Worker, error) {
	keys, err := cn.workers.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Worker
	for _, k := range keys {
		e, err := cn.workers.Get(ctx, k)
		if err != nil {
			continue // expired between the listing and now
		}
		var w Worker
		if json.Unmarshal(e.Value(), &w) == nil {
			out = append(out, w)
		}
	}
	return out, nil
}

// Heartbeat is how often a worker renews its presence; a joining worker
// waits for it before sending, so the others have cut their share first.
func Heartbeat() time.Duration { return heartbeat }

func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
